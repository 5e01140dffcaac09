"""The local test bed (design section 8): control plane, pod runtime and operator runtime."""
