"""Embeddings decoding and every writer, with numpy and with the stdlib fallback (numpy hidden from the
module). Every printed float must parse back to the float32 the API sent."""

import base64
import csv
import io
import json
import random
import struct

import pytest

from oaicli.core.errors import InputError
from oaicli.media import embeddings

TEXTS = ["plain", 'a "quoted", comma', "line\nbreak", "  padded ", "漢字 é"]


@pytest.fixture(params=["numpy", "no-numpy"])
def fast(request, monkeypatch):
    """The module as it behaves with numpy installed, and without it."""
    if request.param == "no-numpy":
        monkeypatch.setattr(embeddings, "numpy", None)
        monkeypatch.setattr(embeddings.Matrix, "fast", False)
    return embeddings


def f32(values):
    """The float32 values of `values`, as Python floats."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def vectors(rows, dims, seed=1):
    rng = random.Random(seed)
    return [f32([rng.gauss(0, 0.03) for _ in range(dims)]) for _ in range(rows)]


def as_base64(vector):
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def matrix_of(rows):
    return embeddings.decode([as_base64(v) for v in rows])


def rows_of(matrix):
    return [json.loads(matrix.row_json(i)) for i in range(matrix.rows)]


def write_all(writer, sent, texts=TEXTS, batch=2):
    for start in range(0, len(texts), batch):
        writer.write(start, texts[start:start + batch], matrix_of(sent[start:start + batch]))
    writer.close()


def test_base64_decodes_to_the_float32_values_sent(fast):
    sent = vectors(3, 1536)
    matrix = matrix_of(sent)
    assert (matrix.rows, matrix.dims) == (3, 1536)
    assert [f32(row) for row in rows_of(matrix)] == sent


def test_base64_with_padding_decodes_per_vector(fast):
    sent = vectors(3, 4)  # 16 bytes: each string ends in '=='; joining them first would corrupt the rest
    assert as_base64(sent[0]).endswith("==")
    assert [f32(row) for row in rows_of(matrix_of(sent))] == sent


def test_float_lists_are_printed_back_as_the_server_wrote_them(fast):
    sent = [[0.1, -0.25, 1e-7], [0.3, 0.0, 2.5]]
    assert rows_of(fast.decode(sent)) == sent


@pytest.mark.parametrize("items,message", [
    ([[0.1, 0.2], [0.3]], r"different lengths \(1, 2\)"),
    (["AAAAAA==", [0.5]], "base64 and float vectors are mixed"),
    ([[0.1], {"x": 1}], "base64 and float vectors are mixed"),
])
def test_inconsistent_answers_are_refused(fast, items, message):
    with pytest.raises(ValueError, match=message):
        fast.decode(items)


def test_jsonl_round_trips_every_float32(fast):
    sent = vectors(len(TEXTS), 1536)
    sink = io.BytesIO()
    write_all(fast.JsonlWriter(sink), sent)
    lines = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert [(line["index"], line["input"]) for line in lines] == list(enumerate(TEXTS))
    assert [f32(line["embedding"]) for line in lines] == sent


def test_with_numpy_jsonl_prints_the_shortest_float32_text():
    sink = io.BytesIO()
    write_all(embeddings.JsonlWriter(sink), [f32([0.1, -0.2])], texts=["x"])
    assert sink.getvalue() == b'{"index":0,"input":"x","embedding":[0.1,-0.2]}\n'


def test_without_numpy_jsonl_prints_the_shortest_double_equal_to_each_float32(monkeypatch):
    monkeypatch.setattr(embeddings, "numpy", None)
    sink = io.BytesIO()
    write_all(embeddings.JsonlWriter(sink), [f32([0.1, -0.2])], texts=["x"])
    assert sink.getvalue() == b'{"index":0,"input":"x","embedding":[0.10000000149011612,-0.20000000298023224]}\n'


def test_json_is_one_array_that_round_trips(fast):
    sent = vectors(len(TEXTS), 8)
    sink = io.BytesIO()
    write_all(fast.JsonWriter(sink), sent)
    items = json.loads(sink.getvalue())
    assert [item["input"] for item in items] == TEXTS
    assert [f32(item["embedding"]) for item in items] == sent
    empty = io.BytesIO()
    fast.JsonWriter(empty).close()
    assert json.loads(empty.getvalue()) == []


def test_csv_parses_back_with_awkward_inputs(fast):
    sent = vectors(len(TEXTS), 1536)
    sink = io.BytesIO()
    write_all(fast.CsvWriter(sink), sent)
    rows = list(csv.reader(io.StringIO(sink.getvalue().decode(), newline="")))
    assert rows[0][:3] == ["index", "input", "dim_0"] and len(rows[0]) == 2 + 1536
    assert [row[1] for row in rows[1:]] == TEXTS
    assert [f32([float(x) for x in row[2:]]) for row in rows[1:]] == sent


def test_csv_quotes_inputs_as_the_csv_module_does():
    for text in TEXTS + ['"', "a,b", "x\ry", " lead", "trail "]:
        expected = io.StringIO()
        csv.writer(expected).writerow([text])
        assert embeddings._csv_field(text).decode() + "\r\n" == expected.getvalue()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_npy_parses_back(fast, dtype):
    sent = vectors(len(TEXTS), 1536)
    sink = io.BytesIO()
    write_all(fast.NpyWriter(sink, dtype), sent)
    data = sink.getvalue()
    header_len = struct.unpack("<H", data[8:10])[0]
    header = eval(data[10:10 + header_len].decode("latin-1"))  # a dict literal, as numpy writes it
    assert header == {"descr": "<f4" if dtype == "float32" else "<f8", "fortran_order": False,
                      "shape": (len(TEXTS), 1536)}
    code = "f" if dtype == "float32" else "d"
    values = struct.unpack(f"<{len(TEXTS) * 1536}{code}", data[10 + header_len:])
    assert [list(values[r * 1536:(r + 1) * 1536]) for r in range(len(TEXTS))] == sent


def test_npy_files_are_the_same_with_and_without_numpy(monkeypatch):
    sent = vectors(len(TEXTS), 64)
    with_numpy = io.BytesIO()
    write_all(embeddings.NpyWriter(with_numpy, "float64"), sent)
    monkeypatch.setattr(embeddings, "numpy", None)
    without = io.BytesIO()
    write_all(embeddings.NpyWriter(without, "float64"), sent)
    assert with_numpy.getvalue() == without.getvalue()


def test_npy_refuses_vectors_of_another_length(fast):
    writer = fast.NpyWriter(io.BytesIO(), "float32")
    writer.write(0, ["a"], matrix_of(vectors(1, 4)))
    with pytest.raises(InputError, match=r"different lengths \(4 and 8\)"):
        writer.write(1, ["b"], matrix_of(vectors(1, 8)))


def test_table_shows_dimensions_and_norm(fast):
    shown = []
    write_all(fast.TableWriter(shown.extend), [f32([3.0, 4.0]), f32([0.6, 0.8])], texts=["a", "b"])
    assert shown == [{"index": 0, "input": "a", "dimensions": 2, "norm": "5.0000"},
                     {"index": 1, "input": "b", "dimensions": 2, "norm": "1.0000"}]
