#!/usr/bin/env bash
# Install the Debian packages that PDFs (WeasyPrint: Pango, a Japanese font), browser tests
# (chromium) and the HSM tests (SoftHSM2, a PKCS#11 token in software) need, when they are
# missing. As root it installs them; otherwise it says what to install and the tests that
# need them skip with that reason (under CI=true they fail instead).
set -u
need=()
dpkg -s libpango-1.0-0 >/dev/null 2>&1 || need+=(libpango-1.0-0)
dpkg -s libpangoft2-1.0-0 >/dev/null 2>&1 || need+=(libpangoft2-1.0-0)
dpkg -s libharfbuzz-subset0 >/dev/null 2>&1 || need+=(libharfbuzz-subset0)
dpkg -s fonts-ipaexfont-gothic >/dev/null 2>&1 || need+=(fonts-ipaexfont)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)  # 𠮷 and other non-BMP kanji
dpkg -s poppler-utils >/dev/null 2>&1 || need+=(poppler-utils)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s softhsm2 >/dev/null 2>&1 || need+=(softhsm2)  # /usr/lib/softhsm/libsofthsm2.so
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: apt-get がありません。手動でインストールしてください: ${need[*]}"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: root 権限で次をインストールしてください: sudo apt-get install ${need[*]}"
  exit 0
fi
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null \
  || echo "system-deps: インストールに失敗しました: ${need[*]}"
exit 0
