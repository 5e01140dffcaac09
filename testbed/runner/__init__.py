"""The local operator runner: the contract of `ansible-operator run` (v1.42.3) on the Kubernetes
Python client and ansible-runner. See docs/local-runner.md."""
