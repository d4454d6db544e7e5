"""params.json_object: the one reader of a JSON-object request body (-d/--data and `api --input`)."""

import pytest

from oaicli.commands.generated.errors import BadInput
from oaicli.commands.generated.params import json_object


def test_an_object_is_the_body():
    assert json_object(lambda: '{"a": 1}', "'--data'") == {"a": 1}


@pytest.mark.parametrize("text, said", [("[1, 2]", "the body must be a JSON object"), ("{nope", "not valid JSON")])
def test_anything_else_is_bad_input_on_the_option(text, said):
    with pytest.raises(BadInput) as caught:
        json_object(lambda: text, "'--input'")
    assert said in caught.value.message and caught.value.param_hint == "'--input'"


def test_a_read_error_is_bad_input_on_the_option():
    def read():
        raise BadInput("no such file: x.json")
    with pytest.raises(BadInput) as caught:
        json_object(read, "'--data'")
    assert caught.value.message == "no such file: x.json" and caught.value.param_hint == "'--data'"
