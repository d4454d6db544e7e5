"""files against Prism: every request (multipart upload included) must validate against OpenAI's schema."""

import json

from tests.contract.conftest import assert_valid

TRAINING = '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n'


def test_upload_validates(prism, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(TRAINING)
    result = prism.run("files", "upload", path, "--purpose", "fine-tune")
    assert_valid(result)
    assert "id" in json.loads(result.stdout)[0]


def test_upload_current_purposes_validate(prism_current, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("some notes")
    for purpose in ("user_data", "batch", "assistants"):
        assert_valid(prism_current.run("files", "upload", path, "--purpose", purpose))


def test_list_validates(prism):
    result = prism.run("files", "list", "--purpose", "fine-tune")
    assert_valid(result)
    assert isinstance(json.loads(result.stdout), list)


def test_list_with_limit_validates(prism_current):
    assert_valid(prism_current.run("files", "list", "--limit", "5"))


def test_get_validates(prism):
    result = prism.run("files", "get", "file-abc123")
    assert_valid(result)
    assert "filename" in json.loads(result.stdout)


def test_delete_validates(prism):
    result = prism.run("files", "delete", "file-abc123", "--yes")
    assert_valid(result)
    assert json.loads(result.stdout)["deleted"] is True


def test_content_validates(prism, tmp_path):
    target = tmp_path / "out.jsonl"
    result = prism.run("files", "content", "file-abc123", "-o", target)
    assert_valid(result)
    assert target.exists() and result.stdout == ""
