"""The fake's /v1/embeddings: float and base64 answers carry the same float32 values, deterministically per
text, at any size up to 4,096; distinct texts get distinct vectors that look like real unit vectors."""

import base64
import json
import struct
import zlib

import pytest

from tests.fake import embeddings


def f32(values):
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


@pytest.mark.parametrize("dims", [1, 2, 4, 1536, 3072, 4096])
def test_float_and_base64_carry_the_same_float32_values(dims):
    for text in ("a red fox", "x", "漢字"):
        floats = json.loads(embeddings.vector_json(text, dims))
        raw = base64.b64decode(embeddings.vector_base64(text, dims))
        assert len(floats) == dims and len(raw) == 4 * dims
        assert f32(floats) == list(struct.unpack(f"<{dims}f", raw))


def test_float_text_is_the_shortest_that_reads_back_as_float32():
    for text in embeddings.vector_json("a red fox", 64)[1:-1].split(","):
        value = f32([float(text)])[0]
        digits = next(d for d in range(1, 10) if f"{value:.{d}g}" == text)
        assert all(f32([float(f"{value:.{d}g}")])[0] != value for d in range(1, digits))


def test_vectors_are_deterministic_and_look_like_unit_vectors():
    assert embeddings.vector_for("a red fox") == embeddings.vector_for("a red fox")
    vector = embeddings.vector_for("a red fox")
    assert len(vector) == embeddings.DEFAULT_DIMS == 1536
    assert 0.9 < sum(x * x for x in vector) ** 0.5 < 1.1


def test_texts_whose_slices_start_at_the_same_place_still_differ():
    texts = [f"line {i}" for i in range(200_000)]
    by_offset = {}
    for text in texts:
        offset = zlib.crc32(text.encode()) % embeddings.POOL_STARTS
        if offset in by_offset:
            other = by_offset[offset]
            assert embeddings.vector_for(text, 8) != embeddings.vector_for(other, 8)
            return
        by_offset[offset] = text
    pytest.fail("no two texts shared a slice start")



def test_the_route_answers_float_and_base64_with_the_same_vectors(fake):
    import httpx

    from tests.conftest import TEST_KEY
    answers = {}
    for encoding in ("float", "base64"):
        reply = httpx.post(f"{fake.url}/embeddings", json={"model": "m", "input": ["a", "b"], "encoding_format": encoding},
                           headers={"Authorization": f"Bearer {TEST_KEY}"})
        answers[encoding] = [item["embedding"] for item in reply.json()["data"]]
    assert answers["float"] == [embeddings.vector_for("a"), embeddings.vector_for("b")]
    assert [list(struct.unpack("<1536f", base64.b64decode(v))) for v in answers["base64"]] == \
        [f32(v) for v in answers["float"]]
