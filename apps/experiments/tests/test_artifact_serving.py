"""Run artifacts are user content: whatever the uploader declared, they never
come back as an active document on the platform's origin, and a run's
artifacts stay within its storage quota."""

import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.core.storage import artifact_storage
from apps.experiments.models import Artifact

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]

SCRIPT_HTML = b"<html><body><script>fetch('/api/v1/transition-requests/1/approve/',{method:'POST'})</script>"
SCRIPT_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/api/v1/transition-requests/1/approve/",'
              b'{method:"POST"})</script></svg>')
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def isolated_storage(settings, tmp_path):
    storages = {**settings.STORAGES}
    artifacts = {**storages["artifacts"], "OPTIONS": {**storages["artifacts"]["OPTIONS"],
                                                      "location": str(tmp_path / "artifacts")}}
    settings.STORAGES = {**storages, "artifacts": artifacts, "default": artifacts}
    return tmp_path / "artifacts"


@pytest.fixture
def api(client_for, scientist):
    return client_for(scientist)


@pytest.fixture
def run_id(api, experiment):
    response = api.post("/api/v1/runs/", {"experiment": experiment.name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def upload(api, run_id, path, content, content_type):
    file = SimpleUploadedFile(os.path.basename(path), content, content_type=content_type)
    return api.post(f"/api/v1/runs/{run_id}/artifacts/", {"file": file, "path": path}, format="multipart")


def download(client, run_id, path, **extra):
    url = reverse("run-artifacts-download", kwargs={"pk": run_id})
    return client.get(url, {"path": path, **extra})


def assert_not_active(response):
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.parametrize("case", [
    ("report.html", SCRIPT_HTML, "text/html"),
    ("plots/chart.svg", SCRIPT_SVG, "image/svg+xml"),
    ("page.xhtml", SCRIPT_HTML, "application/xhtml+xml"),
    ("app.js", b"alert(1)", "text/javascript"),
])
@pytest.mark.parametrize("inline", [None, "1"])
def test_active_artifacts_are_attachments_even_when_asked_inline(api, run_id, case, inline):
    path, content, declared = case
    assert upload(api, run_id, path, content, declared).status_code == 201
    response = download(api, run_id, path, **({"inline": inline} if inline else {}))
    assert_not_active(response)
    assert b"".join(response.streaming_content) == content


def test_html_uploaded_under_a_text_name_is_shown_as_plain_text(api, run_id):
    assert upload(api, run_id, "notes.txt", SCRIPT_HTML, "text/html").status_code == 201
    response = download(api, run_id, "notes.txt", inline="1")
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


@pytest.mark.parametrize("case", [
    ("plots/roc.png", PNG, "image/png", "image/png"),
    ("logs/train.txt", b"epoch 1 loss 0.3\n", "text/plain", "text/plain; charset=utf-8"),
    ("plots/roc.json", b'{"data": []}', "application/json", "text/plain; charset=utf-8"),
])
def test_passive_artifacts_still_display_inline(api, run_id, case):
    path, content, declared, served = case
    assert upload(api, run_id, path, content, declared).status_code == 201
    response = download(api, run_id, path, inline="1")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("inline")
    assert response["Content-Type"] == served
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == content
    # Without ?inline=1 the same file is a download.
    assert download(api, run_id, path)["Content-Disposition"].startswith("attachment")


def test_links_on_the_run_page_do_not_serve_active_content(client, scientist, api, run_id):
    assert upload(api, run_id, "plots/evil.html", SCRIPT_HTML, "text/html").status_code == 201
    client.force_login(scientist)
    page = client.get(reverse("experiments:run", args=[run_id])).content.decode()
    base = reverse("run-artifacts-download", kwargs={"pk": run_id})
    links = {part.split('"')[0].replace("&amp;", "&") for part in page.split(f'"{base}?')[1:]}
    assert links, "the run page links its artifacts"
    for query in links:
        assert_not_active(client.get(f"{base}?{query}"))
        assert_not_active(client.get(f"{base}?{query}&inline=1"))


# --- Per-run quota --------------------------------------------------------------------

def stored_run_files(run_id) -> list[str]:
    root = os.path.join(artifact_storage().location, "runs", str(run_id))
    return [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names]


def test_upload_over_the_run_quota_is_refused_before_anything_is_written(api, run_id, settings):
    settings.RUN_ARTIFACT_QUOTA_BYTES = 100
    assert upload(api, run_id, "a.bin", b"x" * 60, "application/octet-stream").status_code == 201
    before = stored_run_files(run_id)
    response = upload(api, run_id, "b.bin", b"y" * 41, "application/octet-stream")
    assert response.status_code == 413, response.content
    error = response.json()["error"]
    assert error["code"] == "artifact_quota_exceeded"
    assert error["details"] == {"quota_bytes": 100, "used_bytes": 60, "upload_bytes": 41}
    assert stored_run_files(run_id) == before
    assert list(Artifact.objects.filter(run_id=run_id).values_list("path", flat=True)) == ["a.bin"]
    # Exactly up to the quota is fine.
    assert upload(api, run_id, "c.bin", b"z" * 40, "application/octet-stream").status_code == 201


def test_quota_counts_the_bytes_of_the_file_not_what_the_client_claims(scientist, make_run, settings):
    from apps.core.errors import ApplicationError
    from apps.experiments.services import artifact_log

    settings.RUN_ARTIFACT_QUOTA_BYTES = 10
    run = make_run()
    with pytest.raises(ApplicationError) as caught:
        artifact_log(actor=scientist, run=run, fileobj=io.BytesIO(b"0123456789A"), path="big.bin")
    assert caught.value.code == "artifact_quota_exceeded"
    assert stored_run_files(run.pk) == []
