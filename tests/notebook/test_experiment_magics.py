"""%openjd_rerun and %openjd_compare in a real kernel: a rerun with --verify says whether
it reproduced the record, in its one summary; a comparison shows what changed."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from kernel_harness import KernelHarness


def sweep_cell() -> str:
    code = (
        "import pathlib, sys; out = pathlib.Path(sys.argv[1]); out.mkdir(exist_ok=True); "
        "(out / ('f%s.txt' % sys.argv[2])).write_text(sys.argv[3])"
    )
    return textwrap.dedent(
        f"""\
        %%openjd_template sweep
        specificationVersion: jobtemplate-2023-09
        name: Sweep
        parameterDefinitions:
        - name: Out
          type: PATH
          objectType: DIRECTORY
          dataFlow: OUT
          default: out
        - name: Gain
          type: INT
          default: 1
        steps:
        - name: Render
          parameterSpace:
            taskParameterDefinitions:
            - name: F
              type: INT
              range: "1-2"
          script:
            actions:
              onRun:
                command: {sys.executable}
                args: ["-c", "{code}", "{{{{Param.Out}}}}", "{{{{Task.Param.F}}}}", "{{{{Param.Gain}}}}"]
        """
    )


def test_rerun_verify_and_compare_in_a_kernel(kernel: KernelHarness, tmp_path: Path) -> None:
    assert kernel.execute(sweep_cell()).status == "ok"  # Out: the kernel's folder's out/
    assert kernel.execute("%openjd_run sweep --out first --quiet").status == "ok"
    rerun = kernel.execute("%openjd_rerun first --verify --out again")
    assert rerun.status == "ok", rerun.text()
    # The dashboard is replaced by the one summary, which says whether it reproduced.
    final = rerun.of_type("update_display_data")[-1]["content"]["data"]
    assert "reproduced: 2/2 outputs identical" in final["text/plain"]
    assert "reproduced: 2/2 outputs identical" in final["text/html"]
    assert not rerun.of_type("execute_result")  # shown once: no Out[] repeat
    check = kernel.execute("print(again.verification.ok, again.run_dir != first.run_dir)")
    assert "True True" in check.text()

    changed = kernel.execute("%openjd_rerun first -p Gain=3 --out third --quiet")
    assert changed.status == "ok", changed.text()
    comparison = kernel.execute("%openjd_compare first third")
    assert comparison.status == "ok", comparison.text()
    html = "".join(
        message["content"]["data"].get("text/html", "")
        for message in comparison.of_type("execute_result")
    )
    assert "Gain" in html and "outputs: 0/2 identical" in html
