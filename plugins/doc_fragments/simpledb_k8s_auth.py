"""Documentation of the Kubernetes authentication options (k8s.py), named as in kubernetes.core."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, or its content as a dictionary.
      - Defaults to the environment variable E(K8S_AUTH_KUBECONFIG) (which the operator sets to the
        kubeconfig of its proxy); without it and without O(host), the pod's service account when
        running in a cluster, else E(KUBECONFIG) or C(~/.kube/config).
    type: raw
  context:
    description:
      - The kubeconfig context to use. Defaults to E(K8S_AUTH_CONTEXT), else the current context.
    type: str
  host:
    description:
      - URL of the API server. Defaults to E(K8S_AUTH_HOST), else the kubeconfig's.
    type: str
  api_key:
    description:
      - Bearer token for the API server. Defaults to E(K8S_AUTH_API_KEY). Never logged or returned.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Defaults to E(K8S_AUTH_VERIFY_SSL),
        else the kubeconfig's setting.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - CA certificate file to verify the API server with. Defaults to E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Client certificate file. Defaults to E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Key file of O(client_cert). Defaults to E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
requirements:
  - kubernetes (the Python client), only for credentials the module cannot read itself (an exec or
    auth-provider plugin, several kubeconfig files, a proxy, tls-server-name)
"""
