"""What the distribution ships besides the code: the PEP 561 marker and the license.

flit_core (the build backend) puts every file of the package directory into the wheel and
LICENSE* files into its metadata; nothing in pyproject.toml may exclude them."""

from pathlib import Path

import tapegrad

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = (ROOT / "pyproject.toml").read_text()  # read as text: tomllib needs Python 3.11


def test_the_package_is_marked_as_typed_and_the_build_keeps_the_marker():
    assert (Path(tapegrad.__file__).parent / "py.typed").is_file()
    assert 'build-backend = "flit_core.buildapi"' in PYPROJECT
    assert "[tool.flit" not in PYPROJECT  # no include/exclude rules that could drop it


def test_the_mit_license_the_metadata_declares_is_there():
    assert '\nlicense = { text = "MIT" }\n' in PYPROJECT
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the tapegrad developers" in text
    assert "Permission is hereby granted, free of charge, to any person obtaining a copy" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
