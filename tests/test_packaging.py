import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n")
    block = text.split("---\n")[1]
    return dict(line.split(": ", 1) for line in block.strip().splitlines())


def pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.fullmatch(rf"{package}==([\w.]+)", line.strip())
        if match:
            return match.group(1)
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def test_space_front_matter():
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == pinned("gradio")
    assert meta["app_file"] == "app.py"
    assert meta["python_version"].strip('"') == "3.11"
    assert meta["title"]


def test_dockerfile_matches_readme_and_ci():
    docker = (ROOT / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    torch = f"torch=={pinned('torch')}"
    for text in (docker, readme, ci):
        assert f"pip install" in text
        assert torch in text
        assert "-r requirements.txt" in text
    assert re.search(r"pip install[^\n]*" + re.escape(torch) + r"[^\n]*&&[^\n]*\n?[^\n]*-r requirements.txt", docker)
    assert 'CMD ["python", "app.py"]' in docker
    assert "python app.py" in readme
    assert "--uid 1000" in docker
    assert re.search(r"^USER user$", docker, re.M)
    assert "GRADIO_SERVER_NAME=0.0.0.0" in docker
    assert "GRADIO_SERVER_PORT=7860" in docker
    assert "EXPOSE 7860" in docker


def test_ci_runs_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash .ci/run" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pytest" in ci
    assert "set -euo pipefail" in ci


def test_torch_installed_before_requirements():
    for path in ("Dockerfile", ".ci/run"):
        text = (ROOT / path).read_text()
        assert text.index("torch==") < text.index("-r requirements.txt"), path
