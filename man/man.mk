# man/man.mk - the manual pages, included by the Makefile.
#
# One source format: mdoc(7), written by hand; nothing is generated.
#   make man-lint     mandoc -T lint (when mandoc is installed) and man(1) with
#                     groff's warnings, on every page; fails on any message.
# `make install` puts them into $(DESTDIR)$(MANDIR)/manN uncompressed
# (dh_compress gzips them in the Debian package).

MAN1 = man/mailauth.1
MAN5 = man/pam_mailauth.conf.5
MAN8 = man/pam_mailauth.8 man/mailauthd.8
MAN_PAGES = $(MAN1) $(MAN5) $(MAN8)

# mandoc's STYLE messages are left out: "referenced manual not found" for the
# pages of this package is expected until they are installed.
man-lint:
	@set -e; status=0; \
	for page in $(MAN_PAGES); do \
	  if command -v mandoc >/dev/null 2>&1; then \
	    out=$$(mandoc -T lint -W warning "$$page" 2>&1) || true; \
	    if [ -n "$$out" ]; then echo "$$out"; status=1; fi; \
	  fi; \
	  out=$$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
	         man --warnings -E UTF-8 -l "$$page" 2>&1 >/dev/null) || status=1; \
	  if [ -n "$$out" ]; then echo "$$page: $$out"; status=1; fi; \
	done; \
	exit $$status

.PHONY: man-lint
