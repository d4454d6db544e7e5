"""Proxies (HTTP_PROXY, NO_PROXY) and corporate certificate authorities (SSL_CERT_FILE), over loopback."""

import json
import shutil
import socket
import ssl
import subprocess

import pytest

from tests.conftest import TEST_KEY
from tests.fake.server import FakeOpenAI


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_http_proxy_carries_the_request(invoke, fake, monkeypatch):
    # The fake doubles as the proxy: it gets `GET http://api.example.invalid/v1/models` and answers it.
    origin = fake.url.removesuffix("/v1")
    monkeypatch.setenv("HTTP_PROXY", origin)
    result = invoke("models", "list", "--base-url", "http://api.example.invalid/v1", "--max-retries", "0")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 4
    assert fake.calls("GET", "/v1/models")[-1].headers["host"] == "api.example.invalid"


def test_no_proxy_bypasses_it(invoke, fake, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    refused = invoke("models", "list", "--max-retries", "0")
    assert refused.exit_code == 5  # the (dead) proxy was used
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    result = invoke("models", "list", "--max-retries", "0")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 4


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, standing in for a corporate CA."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_fake(certificate, monkeypatch):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = FakeOpenAI()
    server.tls = context
    with server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
        yield server


def test_untrusted_certificate_is_refused(invoke, tls_fake):
    result = invoke("models", "list", "--max-retries", "0")
    assert result.exit_code == 5
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr and result.stdout == ""


def test_ssl_cert_file_trusts_the_corporate_ca(invoke, tls_fake, certificate, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    result = invoke("models", "list", "--max-retries", "0")
    assert result.exit_code == 0, result.stderr
    assert tls_fake.url.startswith("https://") and len(json.loads(result.stdout)) == 4


def test_bad_ssl_cert_file_is_one_clear_line(invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    result = invoke("models", "list", "--api-key", TEST_KEY)
    assert result.exit_code == 3
    assert result.stderr == (f"Error: Cannot load the certificates in SSL_CERT_FILE={tmp_path / 'missing.pem'}: "
                             "No such file or directory. Point it at a PEM file of CA certificates, or unset it.\n")
