"""models against Prism: every request must validate against OpenAI's schema."""

import json

from tests.contract.conftest import assert_valid


def test_models_list_validates(prism):
    result = prism.run("models", "list")
    assert_valid(result)
    assert isinstance(json.loads(result.stdout), list)


def test_models_get_validates(prism):
    result = prism.run("models", "get", "gpt-4o")
    assert_valid(result)
    assert "id" in json.loads(result.stdout)


def test_models_delete_validates(prism):
    result = prism.run("models", "delete", "ft:gpt-4o-mini:acme::abc123", "--yes")
    assert_valid(result)
    assert "deleted" in json.loads(result.stdout)
