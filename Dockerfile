# The SimpleDB operator image: ansible-operator v1.42.3 running this repository's roles and
# modules. The base image (UBI 9 minimal, Python 3.12, ansible-core 2.18, ansible-runner 2.4.3,
# kubernetes 33.1.0) ships no collections and no pip, so the Python libraries the modules need
# are installed by a builder stage and copied in.

# Stage 1: the modules' Python libraries (all pure Python), installed into a folder.
FROM registry.access.redhat.com/ubi9/python-312:latest AS python-libs
COPY requirements/runtime.txt /tmp/runtime.txt
RUN pip install --no-cache-dir --target /tmp/simpledb-python -r /tmp/runtime.txt

# Stage 2: the operator.
FROM quay.io/operator-framework/ansible-operator:v1.42.3

COPY --from=python-libs /tmp/simpledb-python /opt/simpledb-python
ENV PYTHONPATH=/opt/simpledb-python

COPY requirements.yml ${HOME}/requirements.yml
RUN ansible-galaxy collection install -r ${HOME}/requirements.yml \
 && chmod -R ug+rwx ${HOME}/.ansible

# The project's modules are found by path, as in local runs (ansible.cfg).
ENV ANSIBLE_LIBRARY=${HOME}/plugins/modules \
    ANSIBLE_MODULE_UTILS=${HOME}/plugins/module_utils \
    ANSIBLE_DOC_FRAGMENT_PLUGINS=${HOME}/plugins/doc_fragments \
    ANSIBLE_GATHERING=explicit

COPY watches.yaml ${HOME}/watches.yaml
COPY playbook.yaml ${HOME}/playbook.yaml
COPY roles/ ${HOME}/roles/
COPY plugins/ ${HOME}/plugins/
