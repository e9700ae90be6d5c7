import os, time
with open(os.environ["BENCH_TMP"] + "/env.sh", "w") as f:
    for k, v in os.environ.items():
        if k.startswith("BENCH_") or k.startswith("MA_TEST"):
            f.write("export %s='%s'\n" % (k, v))
time.sleep(7200)
