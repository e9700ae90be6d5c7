#!/bin/bash
# tests/pkg/test_man.sh - the manual pages are clean:
#
#   - `make -s man-lint` (man/man.mk) exits 0 and prints nothing;
#   - man/man.mk lints every page listed here (and no page is missing from it);
#   - each of man/mailauth.1, man/pam_mailauth.conf.5, man/pam_mailauth.8,
#     man/mailauthd.8, on its own:
#       mandoc -T lint at level warning: no message, exit 0;
#       mandoc -T lint at level style: no message except "referenced manual not found"
#         (this package's pages are not installed yet, sudo(8) may be absent) and
#         mandoc.db's own staleness notes (about the system's database, not the page);
#       mandoc -T utf8 renders it with no message, its title line names the page;
#       groff with every warning (-ww, the man-db path: man --warnings) renders it with
#         nothing on stderr.
#
# mandoc is a test dependency (tests/lib/deps.sh, list "test"): when it is missing and
# listed there, it is installed (as root) rather than the lint being skipped; when it is
# missing and not listed, or cannot be installed, the test fails.
# Prints "ok - ..." / "not ok - ..." lines; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/../lib/common.sh"
cd "$MA_ROOT" || exit 1
work=$(mktemp -d "${TMPDIR:-/tmp}/ma-man.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
err=$work/stderr

PAGES="man/mailauth.1 man/pam_mailauth.conf.5 man/pam_mailauth.8 man/mailauthd.8"

# --- mandoc present ----------------------------------------------------------------

if ! command -v mandoc >/dev/null 2>&1; then
	if ! tests/lib/deps.sh test | grep -x mandoc >/dev/null; then
		not_ok "mandoc is installed" "mandoc is missing and not in tests/lib/deps.sh's test list"
	elif [ "$(id -u)" -ne 0 ]; then
		not_ok "mandoc is installed" "missing; as root: apt-get install -y mandoc (tests/lib/deps.sh test)"
	else
		echo "# mandoc is missing; installing it (listed in tests/lib/deps.sh test)"
		# Without apt-get update first: the lists are usually there; then with it.
		out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mandoc 2>&1 </dev/null) ||
			out=$({ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends mandoc; } 2>&1 </dev/null)
		command -v mandoc >/dev/null 2>&1 ||
			not_ok "mandoc is installed" "still no mandoc in PATH after apt-get install mandoc:" "$out"
	fi
fi
if ! command -v mandoc >/dev/null 2>&1; then
	ma_done
	exit 1
fi
ok "mandoc is installed ($(command -v mandoc))"

# --- make man-lint -------------------------------------------------------------------

out=$(make -s --no-print-directory man-lint 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then
	ok "make -s man-lint: exit 0, no message"
else
	not_ok "make -s man-lint: exit 0, no message" "exit status $rc" "$out"
fi

# --- man.mk lints every page ---------------------------------------------------------

# The pages man-lint goes through (MAN_PAGES of man/man.mk), against the list above and
# the pages in man/: a page left out of MAN_PAGES would never be linted by `make`.
expanded=$(make -s --no-print-directory -f man/man.mk \
	--eval 'ma-print-pages: ; @echo $(MAN_PAGES)' ma-print-pages 2>&1)
have=$(printf '%s\n' $expanded | sort -u | tr '\n' ' ')
want=$(printf '%s\n' $PAGES man/*.[0-9] | sort -u | tr '\n' ' ')
if [ -n "$have" ] && [ "$have" = "$want" ]; then
	ok "man/man.mk lints every page: $have"
else
	not_ok "man/man.mk lints every page" "MAN_PAGES: $have" "expected:  $want"
fi

# --- each page ------------------------------------------------------------------------

for page in $PAGES; do
	if [ ! -s "$page" ]; then
		not_ok "$page exists"
		continue
	fi
	name=$(basename "$page")
	sect=${name##*.}
	title=$(printf '%s' "${name%.*}" | tr '[:lower:]' '[:upper:]')

	out=$(mandoc -T lint -W warning "$page" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then
		ok "$page: mandoc -T lint -W warning: clean"
	else
		not_ok "$page: mandoc -T lint -W warning: clean" "exit status $rc" "$out"
	fi

	out=$(mandoc -T lint -W style "$page" 2>&1 |
		grep -v -e ': STYLE: referenced manual not found: ' -e '^mandoc: outdated mandoc\.db ')
	if [ -z "$out" ]; then
		ok "$page: mandoc -T lint -W style: nothing but unresolved cross references"
	else
		not_ok "$page: mandoc -T lint -W style: nothing but unresolved cross references" "$out"
	fi

	text=$(mandoc -T utf8 -W warning "$page" 2>"$err")
	rc=$?
	# mandoc's terminal output emboldens by overstriking (X backspace X): without it.
	plain=$(printf '%s\n' "$text" | sed 's/.\x08//g')
	first=$(printf '%s\n' "$plain" | sed -n 1p)
	if [ $rc -eq 0 ] && [ ! -s "$err" ] && [[ $first == "$title($sect)"*"$title($sect)" ]] &&
		printf '%s\n' "$plain" | grep -x 'NAME' >/dev/null; then
		ok "$page: mandoc renders it with no message, as $title($sect) with a NAME section"
	else
		not_ok "$page: mandoc renders it with no message, as $title($sect) with a NAME section" \
			"exit status $rc" "$(cat "$err")" "first line: $first"
	fi

	# groff with all warnings enabled, through man-db as a reader would see it.
	text=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings=all -E UTF-8 -l "$page" 2>"$err")
	rc=$?
	if [ $rc -eq 0 ] && [ ! -s "$err" ] && [ -n "$text" ]; then
		ok "$page: man --warnings=all (groff) renders it with nothing on stderr"
	else
		not_ok "$page: man --warnings=all (groff) renders it with nothing on stderr" "exit status $rc" "$(cat "$err")"
	fi
done

ma_done
