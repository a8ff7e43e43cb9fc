"""The shared evaluation bench: suites, runner, results, reports and plots."""

if __name__ != "condense.bench":  # this folder is only ever the package condense.bench
    raise ImportError(f"the bench/ folder of condense installs as condense.bench; import condense.bench, "
                      f"not {__name__}")
