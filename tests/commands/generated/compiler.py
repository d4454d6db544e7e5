"""openapi/compile.py imported for the tests: it is a script of the repo, not a module of the package."""

import importlib.util

from tests.conftest import REPO

_spec = importlib.util.spec_from_file_location("openapi_compile", REPO / "openapi" / "compile.py")
compiler = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compiler)
