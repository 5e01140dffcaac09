"""Shared code of the SimpleDB operator's modules (imported as ansible.module_utils.simpledb)."""
