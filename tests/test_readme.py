"""The README's first program runs as written."""

import pathlib
import re


def test_readme_example_runs(capsys):
    text = (pathlib.Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "(3, 801, 101)" in out
    assert namespace["grad"].shape == (101, 61)
    assert float(abs(namespace["grad"]).max()) > 0
