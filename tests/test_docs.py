"""Every Python code block of docs/plugins.md runs, in order, in one namespace (as a notebook would)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_every_code_block_of_the_plugin_guide_runs(tmp_path, monkeypatch):
    blocks = python_blocks(ROOT / "docs" / "plugins.md")
    assert len(blocks) >= 6  # one per kind, and the notebook registry
    monkeypatch.chdir(tmp_path)  # the demo run writes runs/ here
    namespace = {"__name__": "docs_plugins"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/plugins.md block {i + 1}", "exec"), namespace)
    assert namespace["result"].steps == 2 and (tmp_path / "runs" / "doc_demo" / "samples" / "00003.png").is_file()
