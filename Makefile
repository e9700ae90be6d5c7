# pam_mailauth - one plain Makefile.
#
#   make            pam_mailauth.so, mailauth, lib/libmailauth.a
#   make check      every test (unit, fake servers, real Dovecot through PAM)
#   make demo       a throwaway Dovecot and a real PAM login against it
#   make install    DESTDIR, PREFIX; module into the multiarch security dir
#   make asan       the test suite under ASan + UBSan
#   make fuzz       libFuzzer targets (fuzz/); make fuzz-run FUZZ_SECONDS=N runs them
#   make analyze    clang's static analyzer and cppcheck, no findings allowed
#   make deb        the Debian package; make bench / make profile: figures

CC        ?= cc
PREFIX    ?= /usr
DESTDIR   ?=
MULTIARCH ?= $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || $(CC) -print-multiarch)
PAMDIR    ?= /lib/$(MULTIARCH)/security
BINDIR    ?= $(PREFIX)/bin
SBINDIR   ?= $(PREFIX)/sbin
SYSTEMDUNITDIR ?= /lib/systemd/system
MANDIR    ?= $(PREFIX)/share/man
# README and conf/ examples; debian/rules sets /usr/share/doc/libpam-mailauth.
DOCDIR    ?= $(PREFIX)/share/doc/pam_mailauth
SYSCONFDIR ?= /etc
PKG_CONFIG ?= pkg-config

WARN     = -Wall -Wextra -Wformat=2 -Wshadow -Wconversion -Wmissing-prototypes \
           -Wstrict-prototypes -Wpointer-arith -Wvla -Wnull-dereference \
           -Wimplicit-fallthrough
WERROR  ?= -Werror
OPT     ?= -O2 -g
HARDEN   = -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fno-strict-overflow
DEPCFLAGS := $(shell $(PKG_CONFIG) --cflags libconfuse openssl)
DEPLIBS   := $(shell $(PKG_CONFIG) --libs libconfuse openssl) -lpam -lpthread
CFLAGS  ?=
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(WERROR) $(HARDEN) \
             -fPIC -fvisibility=hidden -Ilib $(DEPCFLAGS) $(SAN) $(CFLAGS)
LDFLAGS ?=
ALL_LDFLAGS = -Wl,-z,relro,-z,now -Wl,--as-needed $(SAN) $(LDFLAGS)

LIB_SRC  = $(sort $(wildcard lib/*.c))
LIB_OBJ  = $(LIB_SRC:.c=.o)
LIB_HDR  = $(wildcard lib/*.h)

UNIT_SRC = $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN = $(UNIT_SRC:.c=)
TEST_HELPERS = tests/harness/pam_settok.so tests/harness/pamlogin tests/harness/heapscan.so \
               tests/harness/logshim.so
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS   := $(shell $(PKG_CONFIG) --libs check)

all: pam_mailauth.so mailauth mailauthd lib/libmailauth.a

lib/%.o: lib/%.c $(LIB_HDR)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

lib/libmailauth.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

pam_mailauth.o: pam_mailauth.c $(LIB_HDR)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Only pam_sm_* are exported (pam_mailauth.map); tests/unit/test_exports proves it.
pam_mailauth.so: pam_mailauth.o lib/libmailauth.a pam_mailauth.map
	$(CC) -shared -o $@ pam_mailauth.o lib/libmailauth.a \
	  -Wl,--version-script=pam_mailauth.map -Wl,--no-undefined -Wl,-z,nodelete $(ALL_LDFLAGS) $(DEPLIBS)

mailauth: mailauth.c lib/libmailauth.a $(LIB_HDR)
	$(CC) $(ALL_CFLAGS) -fPIE -pie -o $@ mailauth.c lib/libmailauth.a $(ALL_LDFLAGS) $(DEPLIBS)

mailauthd: mailauthd.c lib/libmailauth.a $(LIB_HDR)
	$(CC) $(ALL_CFLAGS) -fPIE -pie -o $@ mailauthd.c lib/libmailauth.a $(ALL_LDFLAGS) $(DEPLIBS)

tests/unit/test_%: tests/unit/test_%.c $(wildcard tests/unit/*.h) lib/libmailauth.a
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests/unit -o $@ $< lib/libmailauth.a \
	  $(ALL_LDFLAGS) $(CHECK_LIBS) $(DEPLIBS) -ldl

# Preloaded into Cyrus (test_cyrus.sh), a program built without sanitizers:
# never built with $(SAN), whose runtime must come first in the process.
tests/harness/logshim.so: tests/harness/logshim.c
	$(CC) -std=c11 -D_GNU_SOURCE -O2 $(WARN) $(WERROR) -fPIC -fvisibility=default -shared \
	  -o $@ $< -Wl,-z,relro,-z,now

tests/harness/%.so: tests/harness/%.c
	$(CC) $(ALL_CFLAGS) -fvisibility=default -shared -o $@ $< $(ALL_LDFLAGS) -lpam

tests/harness/pamlogin: tests/harness/pamlogin.c
	$(CC) $(ALL_CFLAGS) -fPIE -pie -o $@ $< $(ALL_LDFLAGS) -lpam -lssl -lcrypto

test-programs: all $(UNIT_BIN) $(TEST_HELPERS)

# The one test command (README): installs missing test packages (as root),
# then unit tests, fake servers, real servers.
check: test-deps
	$(MAKE) test-programs
	tests/run-tests.sh

test-deps:
	tests/lib/install-deps.sh test

# Needs nothing installed: demo.sh installs missing Debian packages (as
# root), then builds.
demo:
	tests/demo.sh

# The suite again under ASan + UBSan, except what sanitizers add nothing to and
# CI's 20 minutes cannot pay for twice: the packaging tests (tests/pkg), the
# hygiene suite (its own valgrind and ThreadSanitizer builds, which cannot run
# under ASan), the foreign daemons' load tests (sshd, Apache, FreeRADIUS),
# whose module code paths pamtester covers here, and tests/real/test_hints.sh,
# which mostly waits out 3 s greeting caps (its C code runs under ASan in
# tests/unit/test_hints and fuzz_porthint).  The plain `make check` runs them
# all; `make asan ASAN_EXCEPT=` runs everything under ASan.
ASAN_EXCEPT ?= tests/pkg/ test_hygiene test_sshd test_callers real/test_hints
asan:
	$(MAKE) clean
	MA_TEST_EXCEPT="$(ASAN_EXCEPT)" \
	$(MAKE) SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  OPT="-O1 -g" HARDEN="" check
	$(MAKE) clean

install: all
	install -d $(DESTDIR)$(PAMDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) \
	  $(DESTDIR)$(SYSTEMDUNITDIR) \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(DOCDIR)/examples
	install -m 0644 pam_mailauth.so $(DESTDIR)$(PAMDIR)/pam_mailauth.so
	install -m 0755 mailauth $(DESTDIR)$(BINDIR)/mailauth
	install -m 0755 mailauthd $(DESTDIR)$(SBINDIR)/mailauthd
	install -m 0644 conf/mailauthd.service conf/mailauthd.socket $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -m 0644 man/mailauth.1 $(DESTDIR)$(MANDIR)/man1/mailauth.1
	install -m 0644 man/pam_mailauth.conf.5 $(DESTDIR)$(MANDIR)/man5/pam_mailauth.conf.5
	install -m 0644 man/pam_mailauth.8 $(DESTDIR)$(MANDIR)/man8/pam_mailauth.8
	install -m 0644 man/mailauthd.8 $(DESTDIR)$(MANDIR)/man8/mailauthd.8
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 conf/*.conf conf/pam.d-* $(DESTDIR)$(DOCDIR)/examples/

DEB_OUT ?= build/deb
# libpam-mailauth in $(DEB_OUT), built from a clean copy of the tree.
deb:
	rm -rf $(DEB_OUT) && mkdir -p $(DEB_OUT)/src
	git ls-files -z --cached --others --exclude-standard | \
	  tar --null --ignore-failed-read -T - -cf - | tar -xf - -C $(DEB_OUT)/src
	cd $(DEB_OUT)/src && dpkg-buildpackage -us -uc -b
	rm -rf $(DEB_OUT)/src
	lintian $(DEB_OUT)/*.deb
	@ls -1 $(DEB_OUT)/*.deb

clean:
	rm -f lib/*.o lib/libmailauth.a pam_mailauth.o pam_mailauth.so mailauth mailauthd \
	  $(UNIT_BIN) $(TEST_HELPERS)
	rm -rf tests/tmp

.PHONY: all check demo asan install clean test-programs test-deps deb

# Targets kept next to what they build.
-include fuzz/fuzz.mk
-include bench/bench.mk
-include tests/hygiene/hygiene.mk
-include man/man.mk
