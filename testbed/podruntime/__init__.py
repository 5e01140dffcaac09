"""The test bed's pod runtime (design section 8): what a kubelet would do for the kwok node.

Run by testbed/cluster.sh as ``python -m testbed.podruntime``: it keeps the pool of
PersistentVolumes (see :mod:`testbed.podruntime.volumes`) and runs a real mariadbd for every
MariaDB pod on the kwok node.
"""
