#!/usr/bin/env bash
# One entry point for a fresh machine; every step is skipped when already done.
#   ./run.sh app [app.py flags...]   set everything up, then launch the app
#   ./run.sh test [pytest args...]   set everything up (with test extras), then run the tests
set -euo pipefail
cd "$(dirname "$0")"

mode="${1:-app}"
[ $# -gt 0 ] && shift
case "$mode" in app|test) ;; *) echo "usage: ./run.sh app|test [args...]" >&2; exit 2 ;; esac

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
TORCH_VERSION="2.13.0"
TORCHAUDIO_REFERENCE="2.11.1"  # only its Python code, unpacked for one test (see below)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

# --- system packages: FluidSynth's library (the app adds a better SoundFont, the tests a browser) -----------
# FluidSynth renders the covers, cairo draws the score pages, ffmpeg streams audio to the page (gradio runs it), and
# a font with Chinese titles the pictures of a Chinese page
system_packages=(libfluidsynth3 libcairo2 ffmpeg fonts-wqy-microhei)
[ "$mode" = app ] && system_packages+=(fluid-soundfont-gm)
[ "$mode" = test ] && system_packages+=(chromium fonts-dejavu-core)  # browser tests (Playwright drives it)
missing=()
if command -v dpkg-query >/dev/null; then
  for pkg in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo ">> installing system packages: ${missing[*]}"
    if ! { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"; }; then
      echo "!! could not install ${missing[*]}; without FluidSynth the piano is rendered with sine tones" >&2
      [ "$mode" = test ] && exit 1
    fi
  fi
elif [ "$(uname)" = Darwin ] && ! command -v fluidsynth >/dev/null; then
  echo "!! FluidSynth not found: install it with 'brew install fluid-synth'" >&2
fi

# --- Python: a virtual environment with CPU-friendly torch first, then the rest ----------------------------
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
requirements=requirements.txt
[ "$mode" = test ] && requirements=requirements-dev.txt
stamp="$VENV/.setup-stamp-$mode"
digest="$(cat requirements*.txt run.sh | sha256sum | cut -d' ' -f1)"  # any requirements file or this script
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  echo ">> installing Python packages into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    "$VENV/bin/python" -m pip install -q "torch==$TORCH_VERSION"
  fi
  "$VENV/bin/python" -m pip install -q -r "$requirements"
  # basic-pitch without its declared TensorFlow (requirements-transcribe.txt says why)
  "$VENV/bin/python" -m pip install -q --no-deps -r requirements-transcribe.txt
  if [ "$mode" = test ]; then
    # torchaudio's Python code, for the test that our melody chroma equals transformers' extractor: the registry's
    # torchaudio links CUDA and does not import here, and its resample and Spectrogram need none of its compiled parts
    reference="$VENV/torchaudio-python"
    rm -rf "$reference" && mkdir -p "$reference"
    "$VENV/bin/python" -m pip download -q --no-deps --dest "$reference" "torchaudio==$TORCHAUDIO_REFERENCE"
    "$VENV/bin/python" - "$reference" <<'PY'
import pathlib, sys, zipfile
folder = pathlib.Path(sys.argv[1])
for wheel in folder.glob("torchaudio-*.whl"):
    with zipfile.ZipFile(wheel) as z:
        z.extractall(folder, [n for n in z.namelist() if n.startswith("torchaudio/") and not n.endswith(".so")])
    wheel.unlink()
PY
  fi
  echo "$digest" > "$stamp"
fi

# Ray Serve only where the app is asked to serve on it (requirements-serve.txt; the test extras have it)
if [ "$mode" = app ] && [[ " $* " == *" --replicas"* || " $* " == *" --ray-address"* ]] \
    && ! "$VENV/bin/python" -c "from ray import serve" 2>/dev/null; then
  echo ">> installing Ray Serve (requirements-serve.txt) for --replicas / --ray-address"
  "$VENV/bin/python" -m pip install -q -r requirements-serve.txt
fi

export GRADIO_ANALYTICS_ENABLED=False
if [ "$mode" = app ]; then
  exec "$VENV/bin/python" app.py "$@"
fi
# --quick: the quick tier for the edit-test loop, every test that starts no app, browser or Ray cluster
# (tests/conftest.py marks the others "live"), a module at a time in two processes (pytest-xdist; those tests compute
# on one thread each; TEST_WORKERS=0: in one).
if [ "${1:-}" = --quick ]; then
  shift
  workers=(-n "${TEST_WORKERS:-2}" --dist loadfile)
  [ "${TEST_WORKERS:-2}" = 0 ] && workers=()
  exec "$VENV/bin/python" -m pytest "${workers[@]}" -m "not live" "$@"
fi
# Everything, in two processes side by side: the live tests in one, and the others beside them in a second at a
# lower priority (nice), in the time the live tests' apps, browsers and clusters leave a core idle (a third of it;
# docs/DEVELOPING.md has the times), so that the live tests run as they would alone. The first's output comes as it
# runs, the other's after it. TEST_SPLIT=0, or a -m of your own: one process.
if [ "${TEST_SPLIT:-1}" = 0 ] || [[ " $* " == *" -m "* ]]; then
  exec "$VENV/bin/python" -m pytest "$@"
fi
rest_log="$(mktemp)"
trap 'rm -f "$rest_log"' EXIT
nice -n 15 "$VENV/bin/python" -m pytest -m "not live" -p no:xdist "$@" >"$rest_log" 2>&1 &
rest=$!
set +e
echo ">> the live tests (apps, browsers, Ray clusters); the others run beside them and report after"
"$VENV/bin/python" -m pytest -m live -p no:xdist "$@"
live_rc=$?
wait "$rest"
rest_rc=$?
set -e
echo ">> the other tests"
cat "$rest_log"
# 5 is pytest's "no tests collected": a selection with nothing in one of the two halves
[ "$live_rc" = 5 ] && [ "$rest_rc" != 5 ] && live_rc=0
[ "$rest_rc" = 5 ] && [ "$live_rc" != 5 ] && rest_rc=0
[ "$live_rc" = 0 ] && [ "$rest_rc" = 0 ] && exit 0
echo "!! failed: the live tests exit $live_rc, the others exit $rest_rc" >&2
exit $(( live_rc != 0 ? live_rc : rest_rc ))
