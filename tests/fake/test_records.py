"""The fakes' shared pieces: a record by id (or a 404) and OpenAI's cursor paging."""

from types import SimpleNamespace

from tests.fake.records import finder, page

ITEMS = [{"id": f"x{i}"} for i in range(5)]


def test_page_follows_the_after_cursor():
    first = page(ITEMS, {"limit": "2"})
    assert [i["id"] for i in first["data"]] == ["x0", "x1"] and first["has_more"]
    assert (first["first_id"], first["last_id"]) == ("x0", "x1")
    last = page(ITEMS, {"limit": 2, "after": "x3"})
    assert [i["id"] for i in last["data"]] == ["x4"] and not last["has_more"]
    assert page(ITEMS, {"after": "unknown"}) == {"object": "list", "data": [], "has_more": False,
                                                "first_id": None, "last_id": None}


def test_finder_answers_404_for_an_unknown_id():
    errors = []
    reply = SimpleNamespace(error=lambda status, message, param=None: errors.append((status, message, param)))
    found = finder({"things": {"a": {"id": "a"}}}, "things", "No thing '{id}'.", param="thing_id")
    assert found(SimpleNamespace(match={"id": "a"}), reply) == {"id": "a"} and not errors
    assert found(SimpleNamespace(match={"id": "b"}), reply) is None
    assert errors == [(404, "No thing 'b'.", "thing_id")]


def test_finder_sees_a_table_replaced_after_it_was_made():
    """benchmarks/download.py replaces the fake's whole `files` table through state.update()."""
    state = {"things": {}}
    reply = SimpleNamespace(error=lambda *args, **kwargs: None)
    found = finder(state, "things", "No thing '{id}'.")
    state.update(things={"late": {"id": "late"}})
    assert found(SimpleNamespace(match={"id": "late"}), reply) == {"id": "late"}
