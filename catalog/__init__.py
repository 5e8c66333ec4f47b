"""steward's catalog: entities, identity, versioning and the store.

The catalog is the bottom layer: it imports none of steward's other packages.
"""

__version__ = "0.1.0"
