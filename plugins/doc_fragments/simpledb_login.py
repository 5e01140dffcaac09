"""Documentation of the login options every SimpleDB database module takes (connection.py)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  login_host:
    description:
      - Host name or IP address of the MariaDB server.
      - In the cluster, the DNS name of the pod through the headless Service
        (C(<name>-0.<name>-headless.<namespace>.svc.cluster.local)).
    type: str
    default: 127.0.0.1
  login_port:
    description: TCP port of the server.
    type: int
    default: 3306
  login_user:
    description: User to log in as.
    type: str
    default: root
  login_password:
    description:
      - Password of O(login_user). Never logged or returned.
    type: str
  login_unix_socket:
    description:
      - Path of the server's Unix socket. When set, O(login_host) and O(login_port) are ignored.
    type: str
  connect_timeout:
    description: Seconds to wait for the connection and the login.
    type: int
    default: 10
requirements:
  - PyMySQL
"""
