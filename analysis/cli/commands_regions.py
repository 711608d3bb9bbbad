"""``regions``: prune a critical region (Wei et al. 2024; Li & Kim 2024) and compare with the aligned model and
random controls."""

from __future__ import annotations

from analysis.cli.common import calibration_data, pair_and_spec, print_paired, progress_bar, rates_row


def cmd_regions(args) -> int:
    from analysis.app_support.formatting import control_sentence
    from analysis.core.options import from_args
    from analysis.experiments import prune_and_compare
    from analysis.methods.critical_regions.build import RegionSettings

    pair, spec = pair_and_spec(args)
    lm = pair.aligned
    cal = calibration_data(args, lm)
    methods = ["set_difference", "orthogonal", "units"] if args.method == "all" else [args.method]
    print(
        f"calibration: {len(cal.safety)} safety pairs (aligned refusals), {len(cal.utility)} utility pairs; "
        f"evaluation: {spec.describe()}"
    )
    for i, method in enumerate(methods):
        st = RegionSettings(**from_args(RegionSettings, args, method=method))  # every option the parser gave
        out = prune_and_compare(pair, st, spec, cal, progress=progress_bar)
        region, res = out.region, out.results
        for note in region.notes:
            print(f"  note: {note}")
        if i == 0:
            print(rates_row("aligned (no edit)", res["aligned"]))
        print(
            rates_row(
                region.description, res["pruned"], f"removed {100 * region.removed_fraction:.2f}% of {region.unit}"
            )
        )
        print(f"  convention: {out.convention}")
        one = "  control, seed 0 (one draw; its spread below)" if region.n_controls > 1 else "  control (deterministic)"
        print(rates_row(one, res["control"]))
        if region.n_controls > 1:  # one random control is one draw: its spread over seeds, and each seed paired
            print_paired(res, (("pruned", "aligned"),))
            print(f"  controls over seeds: {out.controls.describe()}")
            rates = ("asr", "utility") if res["pruned"].utility_kind == "exact" else ("asr",)
            for metric in rates:
                print(f"  {control_sentence(res['pruned'], out.control_results(), metric)}")
        else:
            print_paired(res, (("pruned", "aligned"), ("pruned", "control")))
    return 0
