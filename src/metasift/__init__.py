"""metasift: sift metaphase pictures for the dicentric chromosome assay."""

__version__ = "0.1.0"
