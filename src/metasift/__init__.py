"""metasift: sift metaphase pictures for the dicentric chromosome assay."""

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)


def __getattr__(name: str):
    if name == "run":  # metasift.run(paths, steps=...): imported on first use, so that
        from .pipeline import run  # `metasift --help` stays instant

        return run
    raise AttributeError(f"module 'metasift' has no attribute {name!r}")
