"""oaicli image against the loopback fake: saved files byte for byte, names, uploads, and every local check."""

import base64
import hashlib
import json

import pytest

from oaicli.core.errors import ExitCode
from tests.fake.images import IMAGE_PATH, image_bytes, make_png
from tests.fake.server import Scripted


@pytest.fixture
def out(tmp_path):
    return tmp_path / "out"


def cdn_path(prompt, index):
    return f"{IMAGE_PATH}img-{hashlib.sha256(image_bytes(prompt, index)).hexdigest()[:16]}.png"


def test_create_saves_base64_images_byte_for_byte(fake, invoke, out):
    result = invoke("image", "create", "A red fox, at dusk!", "-n", "2", "--response-format", "b64_json", "-o", out)
    assert result.exit_code == 0, result.stderr
    paths = [out / "a-red-fox-at-dusk-1.png", out / "a-red-fox-at-dusk-2.png"]
    assert result.stdout.splitlines() == [str(p) for p in paths]
    assert [p.read_bytes() for p in paths] == [image_bytes("A red fox, at dusk!", i) for i in range(2)]
    assert fake.calls("POST", "/v1/images/generations")[0].json() == {
        "prompt": "A red fox, at dusk!", "model": "dall-e-2", "n": 2, "response_format": "b64_json"}


def test_create_downloads_urls_without_sending_the_key(fake, invoke, out):
    result = invoke("image", "create", "otter", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert (out / "otter-1.png").read_bytes() == image_bytes("otter", 0)
    download = fake.calls("GET", cdn_path("otter", 0))[0]
    assert "authorization" not in download.headers and "api-key" not in download.headers
    assert not list(out.glob(".*"))  # no temporary files left


def test_all_urls_are_fetched_by_one_plain_client(fake, invoke, out, monkeypatch):
    """Not one client per image: each would load the CA certificates and open its own connection."""
    import httpx
    made = []

    class Counting(httpx.Client):
        def __init__(self, *args, **kwargs):
            made.append("headers" in kwargs)  # the API client sets the key header; the plain one sets none
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(httpx, "Client", Counting)
    result = invoke("image", "create", "otter", "-n", "3", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert made == [True, False]
    assert [p.read_bytes() for p in sorted(out.iterdir())] == [image_bytes("otter", i) for i in range(3)]


def test_existing_files_are_never_overwritten(fake, invoke, out):
    out.mkdir()
    (out / "otter-1.png").write_bytes(b"mine")
    result = invoke("image", "create", "otter", "-n", "2", "--response-format", "b64_json", "-o", out)
    assert result.stdout.splitlines() == [str(out / "otter-2.png"), str(out / "otter-3.png")]
    assert (out / "otter-1.png").read_bytes() == b"mine"
    assert (out / "otter-3.png").read_bytes() == image_bytes("otter", 1)


def test_without_hard_links_names_are_claimed_first(fake, invoke, out, monkeypatch):
    import os

    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    out.mkdir()
    (out / "otter-1.png").write_bytes(b"mine")
    monkeypatch.setattr(os, "link", no_links)
    result = invoke("image", "create", "otter", "-n", "2", "--response-format", "b64_json", "-o", out)
    assert result.stdout.splitlines() == [str(out / "otter-2.png"), str(out / "otter-3.png")]
    assert [(out / f"otter-{i}.png").read_bytes() for i in (1, 2, 3)] == \
        [b"mine", image_bytes("otter", 0), image_bytes("otter", 1)]
    assert sorted(p.name for p in out.iterdir()) == ["otter-1.png", "otter-2.png", "otter-3.png"]


def test_all_create_options_are_sent(fake, invoke, out):
    result = invoke("image", "create", "p", "-m", "gpt-image-1", "--size", "1536x1024", "--quality", "high",
                    "--background", "transparent", "--output-format", "jpeg", "--user", "u1", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert fake.calls("POST", "/v1/images/generations")[0].json() == {
        "prompt": "p", "model": "gpt-image-1", "size": "1536x1024", "quality": "high", "background": "transparent",
        "output_format": "jpeg", "user": "u1"}
    assert result.stdout.strip() == str(out / "p-1.jpg")


def test_dalle3_style_and_quality(fake, invoke, out):
    result = invoke("image", "create", "p", "-m", "dall-e-3", "--size", "1792x1024", "--style", "natural",
                    "--quality", "hd", "-o", out)
    assert result.exit_code == 0, result.stderr
    body = fake.calls("POST", "/v1/images/generations")[0].json()
    assert (body["style"], body["quality"], body["size"]) == ("natural", "hd", "1792x1024")


def test_json_format_prints_the_answer_with_paths(fake, invoke, out):
    result = invoke("image", "create", "otter", "--format", "json", "-o", out)
    answer = json.loads(result.stdout)
    assert answer["data"][0]["path"] == str(out / "otter-1.png")
    assert answer["data"][0]["url"].endswith(cdn_path("otter", 0))


def test_no_save_prints_urls_only(fake, invoke, out):
    result = invoke("image", "create", "otter", "-n", "2", "--no-save", "-o", out)
    assert [line.rsplit("/cdn", 1)[1] for line in result.stdout.splitlines()] == \
        [cdn_path("otter", i)[len("/cdn"):] for i in range(2)]
    assert not out.exists()


def test_no_save_with_base64_prints_json(fake, invoke, out):
    result = invoke("image", "create", "otter", "--no-save", "--response-format", "b64_json")
    data = json.loads(result.stdout)["data"]
    assert base64.b64decode(data[0]["b64_json"]) == image_bytes("otter", 0)


def test_a_failed_download_leaves_no_file(fake, invoke, out):
    fake.queue("GET", cdn_path("otter", 0), *[Scripted(status=404, raw=b"gone", content_type="text/plain")])
    result = invoke("image", "create", "otter", "-o", out)
    assert result.exit_code == ExitCode.SERVER
    assert "Downloading http://" in result.stderr and "HTTP 404" in result.stderr
    assert list(out.iterdir()) == []


def test_a_download_that_breaks_off_leaves_no_file(fake, invoke, out):
    fake.state["cdn_drop_at"] = 50
    result = invoke("image", "create", "otter", "-o", out, "--max-retries", "1")
    assert result.exit_code == ExitCode.SERVER
    assert "Downloading http://" in result.stderr and "Nothing was saved at that path" in result.stderr
    assert len(fake.calls("GET", cdn_path("otter", 0))) == 2
    assert list(out.iterdir()) == []  # neither the name claimed for it nor a temporary file


def test_ctrl_c_mid_save_keeps_finished_images_and_leaves_no_partial_one(tmp_path):
    from oaicli.media.images import save_all

    def fetch(url, path, label):
        from oaicli.output.files import atomic_writer
        with atomic_writer(path) as sink:
            sink.write(b"half an ima")
            assert not (tmp_path / "fox-2.png").exists()  # the name appears only with the whole image
            raise KeyboardInterrupt

    saved = []
    with pytest.raises(KeyboardInterrupt):
        save_all([{"b64_json": base64.b64encode(b"first").decode()}, {"url": "http://cdn/x.png"}],
                 tmp_path, "fox", "png", fetch, saved.append)
    assert saved == [tmp_path / "fox-1.png"]
    assert [(p.name, p.read_bytes()) for p in tmp_path.iterdir()] == [("fox-1.png", b"first")]


def test_a_download_is_retried(fake, invoke, out):
    fake.queue("GET", cdn_path("otter", 0), Scripted(status=503, raw=b"busy"), Scripted(drop=True))
    result = invoke("image", "create", "otter", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert (out / "otter-1.png").read_bytes() == image_bytes("otter", 0)
    assert len(fake.calls("GET", cdn_path("otter", 0))) == 3


def test_an_api_refusal_saves_nothing(fake, invoke, out):
    fake.queue("POST", "/v1/images/generations", Scripted(status=400, body={"error": {
        "message": "Your request was rejected by the safety system.", "type": "invalid_request_error"}}))
    result = invoke("image", "create", "bad", "-o", out)
    assert result.exit_code == ExitCode.REQUEST
    assert "rejected by the safety system" in result.stderr
    assert list(out.iterdir()) == []  # the folder was made before the request, to know it is writable


@pytest.mark.parametrize("args,message", [
    (["-n", "0"], "-n must be between 1 and 10 (got 0)."),
    (["-n", "11"], "-n must be between 1 and 10 (got 11)."),
    (["-m", "dall-e-3", "-n", "2"], "dall-e-3 makes one image per request: -n must be 1 (got 2)."),
    (["--size", "1792x1024"], "--size 1792x1024 is not available for dall-e-2; choose one of 256x256, 512x512, "
                              "1024x1024."),
    (["-m", "dall-e-3", "--size", "512x512"], "--size 512x512 is not available for dall-e-3; choose one of "
                                              "1024x1024, 1792x1024, 1024x1792."),
    (["-m", "gpt-image-1", "--size", "256x256"], "--size 256x256 is not available for gpt-image-1; choose one of "
                                                 "auto, 1024x1024, 1536x1024, 1024x1536."),
])
def test_create_request_checks(fake, invoke, out, args, message):
    result = invoke("image", "create", "p", *args, "-o", out)
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == f"Error: {message}"
    assert not fake.calls()


def test_unknown_models_are_not_checked_locally(fake, invoke, out):
    result = invoke("image", "create", "p", "-m", "my-local-diffusion", "--size", "640x480", "-o", out)
    assert result.exit_code == 0, result.stderr


# edit and variation

def png(tmp_path, name, *args, **kwargs):
    path = tmp_path / name
    path.write_bytes(make_png(*args, **kwargs))
    return path


def test_edit_uploads_image_mask_and_fields(fake, invoke, tmp_path, out):
    image = png(tmp_path, "room.png", 16, 16, colour_type=2)
    mask = png(tmp_path, "mask.png", 16, 16, colour_type=6)
    result = invoke("image", "edit", image, "--mask", mask, "--prompt", "a window", "-n", "2", "--size", "512x512",
                    "--response-format", "b64_json", "-o", out)
    assert result.exit_code == 0, result.stderr
    form = _form(fake, "/v1/images/edits")
    assert form["image"] == ("room.png", image.read_bytes(), "image/png")
    assert form["mask"] == ("mask.png", mask.read_bytes(), "image/png")
    assert {k: form[k] for k in ("prompt", "n", "size", "model", "response_format")} == {
        "prompt": "a window", "n": "2", "size": "512x512", "model": "dall-e-2", "response_format": "b64_json"}
    assert (out / "a-window-2.png").read_bytes() == image_bytes("a window", 1)


def test_edit_with_gpt_image_sends_several_images(fake, invoke, tmp_path, out):
    first = png(tmp_path, "a.png", 10, 20, colour_type=2)
    second = tmp_path / "b.jpg"
    second.write_bytes(b"\xff\xd8\xff jpeg bytes")
    result = invoke("image", "edit", first, second, "-p", "combine", "-m", "gpt-image-1", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert _form(fake, "/v1/images/edits")["image"] == [("a.png", first.read_bytes(), "image/png"),
                                                         ("b.jpg", second.read_bytes(), "image/jpeg")]


def test_gpt_image_edits_at_most_16_images(fake, invoke, tmp_path, out):
    images = [png(tmp_path, f"{i}.png", 4, 4) for i in range(17)]
    result = invoke("image", "edit", *images, "-p", "all", "-m", "gpt-image-1", "-o", out)
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == "Error: gpt-image-1 edits at most 16 images at a time (got 17)."
    assert not fake.calls()
    assert invoke("image", "edit", *images[:16], "-p", "all", "-m", "gpt-image-1", "-o", out).exit_code == 0


def test_variation_uploads_the_png(fake, invoke, tmp_path, out):
    image = png(tmp_path, "otter.png", 8, 8)
    result = invoke("image", "variation", image, "-n", "3", "-o", out)
    assert result.exit_code == 0, result.stderr
    form = _form(fake, "/v1/images/variations")
    assert form["image"] == ("otter.png", image.read_bytes(), "image/png") and form["n"] == "3"
    assert result.stdout.splitlines() == [str(out / f"otter-variation-{i}.png") for i in (1, 2, 3)]
    assert (out / "otter-variation-3.png").read_bytes() == image_bytes("variation", 2)


def test_upload_is_retried_with_the_whole_file(fake, invoke, tmp_path, out):
    image = png(tmp_path, "otter.png", 8, 8, pad=200_000)
    fake.queue("POST", "/v1/images/variations", Scripted(status=500, body={"error": {"message": "x"}}))
    result = invoke("image", "variation", image, "-o", out)
    assert result.exit_code == 0, result.stderr
    calls = fake.calls("POST", "/v1/images/variations")
    assert len(calls) == 2 and _form(fake, "/v1/images/variations")["image"][1] == image.read_bytes()


def _form(fake, path):
    from tests.fake.server import Request
    call = fake.calls("POST", path)[-1]
    request = Request.__new__(Request)
    request.headers, request._body = call.headers, call.body
    return request.multipart()


@pytest.mark.parametrize("setup,message", [
    (lambda t: ["missing.png"], "Image file not found: missing.png."),
    (lambda t: [_write(t / "photo.png", b"\xff\xd8\xff\xe0 jpeg")],
     "Image {t}/photo.png is not a PNG file (its first bytes are not the PNG signature); dall-e-2 needs a PNG."),
    (lambda t: [png(t, "wide.png", 20, 10, colour_type=6)],
     "Image {t}/wide.png is 20x10; dall-e-2 needs a square image."),
    (lambda t: [png(t, "big.png", 4, 4, colour_type=6, pad=4 * 1024 * 1024)],
     "Image {t}/big.png is 4.0 MB; dall-e-2 needs under 4 MB."),
    (lambda t: [png(t, "opaque.png", 4, 4, colour_type=2)],
     "Image {t}/opaque.png has no transparency, so dall-e-2 cannot tell where to edit; give a --mask or a PNG "
     "with transparent pixels."),
    (lambda t: [png(t, "a.png", 4, 4, colour_type=6), png(t, "b.png", 4, 4, colour_type=6)],
     "dall-e-2 edits one image at a time (got 2); gpt-image models take several."),
    (lambda t: [png(t, "a.png", 4, 4, colour_type=2), "--mask", "nomask.png"], "Mask file not found: nomask.png."),
    (lambda t: [png(t, "a.png", 4, 4, colour_type=2), "--mask", png(t, "m.png", 8, 8, colour_type=6)],
     "Mask {t}/m.png is 8x8 but the image is 4x4; they must match."),
    (lambda t: [png(t, "a.png", 4, 4, colour_type=2), "--mask", png(t, "m.png", 4, 4, colour_type=2)],
     "Mask {t}/m.png has no alpha channel; its transparent pixels mark where to edit."),
    (lambda t: [png(t, "a.png", 4, 4, colour_type=2), "--mask", _write(t / "m.png", b"GIF89a")],
     "Mask {t}/m.png is not a PNG file (its first bytes are not the PNG signature); dall-e-2 needs a PNG."),
])
def test_edit_checks_before_upload(fake, invoke, tmp_path, monkeypatch, setup, message):
    monkeypatch.chdir(tmp_path)
    args = setup(tmp_path)
    result = invoke("image", "edit", *args, "--prompt", "p")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == "Error: " + message.format(t=tmp_path)
    assert not fake.calls()


@pytest.mark.parametrize("setup,message", [
    (lambda t: t / "none.png", "Image file not found: {t}/none.png."),
    (lambda t: _write(t / "fake.png", b"not a png at all"),
     "Image {t}/fake.png is not a PNG file (its first bytes are not the PNG signature); dall-e-2 needs a PNG."),
    (lambda t: png(t, "tall.png", 4, 6), "Image {t}/tall.png is 4x6; dall-e-2 needs a square image."),
    (lambda t: png(t, "big.png", 4, 4, pad=4 * 1024 * 1024), "Image {t}/big.png is 4.0 MB; dall-e-2 needs under 4 MB."),
])
def test_variation_checks_before_upload(fake, invoke, tmp_path, setup, message):
    result = invoke("image", "variation", setup(tmp_path))
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == "Error: " + message.format(t=tmp_path)
    assert not fake.calls()


def _write(path, content):
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("prompt,expected", [
    ("A red fox, at dusk!", "a-red-fox-at-dusk"),
    ("Ein Fuchs über_Wiesen", "ein-fuchs-über-wiesen"),
    ("狐狸 在 黄昏", "狐狸-在-黄昏"),
    ("!!!", "image"),
    ("a" * 30 + " " + "b" * 30, "a" * 30 + "-" + "b" * 9),
    ("word " * 20, ("word-" * 8).rstrip("-")),
])
def test_slug(prompt, expected):
    from oaicli.media.images import slug
    assert slug(prompt) == expected


@pytest.mark.parametrize("command", [["create", "p"], ["variation", "{t}/v.png"]])
def test_an_unusable_output_dir_fails_before_the_request(fake, invoke, tmp_path, command):
    """The images would be paid for and then lost: the folder is checked (and made) first."""
    png(tmp_path, "v.png", 4, 4)
    (tmp_path / "afile").write_bytes(b"")
    args = [arg.format(t=tmp_path) for arg in command]
    result = invoke("image", *args, "-o", tmp_path / "afile" / "sub")
    assert result.exit_code == ExitCode.REQUEST
    assert result.stderr.strip() == f"Error: Cannot save into {tmp_path}/afile/sub: {tmp_path}/afile is a file, " \
                                    "not a folder."
    assert not fake.calls()
    made = invoke("image", *args, "-o", tmp_path / "new" / "dir")
    assert made.exit_code == 0, made.stderr
    assert (tmp_path / "new" / "dir").is_dir()


def test_a_read_only_output_dir_fails_before_the_request(fake, invoke, tmp_path, monkeypatch):
    import os
    readable = os.access
    # as for a user without write permission (root, running the tests, may write anywhere)
    monkeypatch.setattr(os, "access", lambda path, mode: not mode & os.W_OK and readable(path, mode))
    result = invoke("image", "create", "p", "-o", tmp_path)
    assert result.stderr.strip() == f"Error: Cannot save into {tmp_path}: permission denied."
    assert result.exit_code == ExitCode.REQUEST and not fake.calls()


def test_download_bars_on_a_terminal_and_not_in_a_pipe(fake, invoke, out):
    from tests.terminal import run_tty
    shown = run_tty("image", "create", "otter", "-n", "2", "-o", out)
    assert shown.returncode == 0, shown.output
    assert "otter 1/2: 100%" in shown.output and "otter 2/2: 100%" in shown.output
    piped = invoke("image", "create", "otter", "-o", out)
    assert piped.stderr == "" and piped.stdout == f"{out / 'otter-3.png'}\n"


def test_images_go_to_the_current_directory_by_default(fake, invoke, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("image", "create", "otter", "--response-format", "b64_json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "otter-1.png\n"
    assert (tmp_path / "otter-1.png").read_bytes() == image_bytes("otter", 0)
