"""ibledger: an interbank ledger for standardized assets and electronic commercial bills.

The source keeps a flat layout (consensus/, contracts/, node/, cli/, proto/ at the repository
root); this directory holds one relative symlink per package so that the installed names, the
type checker and the wheel all see the same ``ibledger.<package>`` tree.
"""
