# fuzz/fuzz.mk - libFuzzer targets and the static analysis (included by the
# main Makefile, whose WARN, WERROR, DEPCFLAGS, DEPLIBS and LIB_* it uses).
#
#   make fuzz                       every target into fuzz/bin/ (clang, libFuzzer,
#                                   ASan + UBSan; the library is rebuilt there with
#                                   coverage, the tree's lib/*.o are not touched)
#   make fuzz-run [FUZZ_SECONDS=30] each target for N seconds on a copy of its seed
#                 [FUZZ_TARGETS=..] corpus; fails on any crash, leak or violated
#                                   invariant; reproducers are kept in fuzz/bin/
#   make fuzz-corpus                each target once over its seed corpus (seconds)
#   make analyze                    clang's static analyzer and cppcheck over lib/*.c,
#                                   pam_mailauth.c, mailauth.c; fails on any finding
#
# See fuzz/README.md.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_DIR      = fuzz
FUZZ_BIN      = $(FUZZ_DIR)/bin
FUZZ_OBJ      = $(FUZZ_BIN)/obj
FUZZ_SRC      = $(sort $(wildcard $(FUZZ_DIR)/fuzz_*.c))
FUZZ_ALL      = $(patsubst $(FUZZ_DIR)/%.c,%,$(FUZZ_SRC))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer
# The project's warnings, as errors, under clang.  No _FORTIFY_SOURCE: ASan
# checks the same accesses.
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) $(WERROR) -Ilib -I$(FUZZ_DIR) \
                $(DEPCFLAGS) $(FUZZ_SAN)
FUZZ_LIB_OBJ  = $(patsubst lib/%.c,$(FUZZ_OBJ)/lib/%.o,$(LIB_SRC))
FUZZ_SUPPORT  = $(FUZZ_OBJ)/common.o
# fault.c replaces these through the linker (pam-u2f's technique).
FUZZ_WRAP     = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup \
                -Wl,--wrap=strndup,--wrap=recv,--wrap=send
FUZZ_FAULT_TARGETS = fuzz_alloc fuzz_session
# libFuzzer options for every run; per target: FUZZ_OPTS_<target>.
FUZZ_OPTS    ?= -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
FUZZ_OPTS_fuzz_session = -max_len=72000
FUZZ_OPTS_fuzz_config  = -max_len=16384
# A whole frame, and a little more than the largest body a header may announce.
FUZZ_OPTS_fuzz_wire    = -max_len=4200
# Room for a server certificate (DER) behind the 5-byte header.
FUZZ_OPTS_fuzz_porthint = -max_len=4096

fuzz: $(addprefix $(FUZZ_BIN)/,$(FUZZ_ALL))

$(FUZZ_OBJ)/lib/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_OBJ)/libmailauth.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_OBJ)/%.o: $(FUZZ_DIR)/%.c $(wildcard $(FUZZ_DIR)/*.h) $(LIB_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BIN)/%: $(FUZZ_DIR)/%.c $(FUZZ_SUPPORT) $(FUZZ_OBJ)/libmailauth.a $(wildcard $(FUZZ_DIR)/*.h) $(LIB_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_SUPPORT) \
	  $(if $(filter $*,$(FUZZ_FAULT_TARGETS)),$(FUZZ_OBJ)/fault.o $(FUZZ_WRAP)) \
	  $(FUZZ_OBJ)/libmailauth.a $(DEPLIBS)

$(addprefix $(FUZZ_BIN)/,$(FUZZ_FAULT_TARGETS)): $(FUZZ_OBJ)/fault.o

.SECONDARY: $(FUZZ_LIB_OBJ) $(FUZZ_SUPPORT) $(FUZZ_OBJ)/fault.o

# One target on a scratch copy of its corpus (the seeds in the repository
# stay as they are); new inputs are thrown away, crashes are kept.
define fuzz_one
work=$$(mktemp -d) && cp -R $(FUZZ_DIR)/corpus/$(1)/. $$work/; \
log=$(FUZZ_BIN)/$(1).log; \
printf '%-14s %3ss ... ' $(1) $(FUZZ_SECONDS); \
if $(FUZZ_BIN)/$(1) $(FUZZ_OPTS) $(FUZZ_OPTS_$(1)) \
     $(if $(wildcard $(FUZZ_DIR)/dict/$(1).dict),-dict=$(FUZZ_DIR)/dict/$(1).dict) \
     -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_BIN)/$(1)- \
     $$work >$$log 2>&1; then \
  sed -n 's/^stat::number_of_executed_units: */ok, runs: /p' $$log; \
else \
  echo FAILED; fail=1; \
  grep -E -A30 'ERROR|invariant violated|runtime error' $$log | head -n 60; \
  grep -E 'Test unit written to' $$log; \
  echo "  (full log: $$log; reproduce: $(FUZZ_BIN)/$(1) FILE)"; \
fi; \
rm -rf $$work;
endef

fuzz-run: fuzz
	@fail=0; $(foreach t,$(FUZZ_TARGETS),$(call fuzz_one,$(t))) exit $$fail

fuzz-corpus: fuzz
	@for t in $(FUZZ_TARGETS); do \
	  $(FUZZ_BIN)/$$t -runs=0 -artifact_prefix=$(FUZZ_BIN)/$$t- $(FUZZ_DIR)/corpus/$$t \
	    >$(FUZZ_BIN)/$$t.corpus.log 2>&1 \
	    || { echo "$$t: FAILED on its corpus"; tail -n 40 $(FUZZ_BIN)/$$t.corpus.log; exit 1; }; \
	  echo "$$t: corpus ok"; \
	done

fuzz-clean:
	rm -rf $(FUZZ_BIN)

# ---- static analysis --------------------------------------------------------
#
# clang --analyze (the default checkers, which scan-build runs, plus
# security.FloatLoopCounter, optin.portability.UnixAPI and, for the secrets,
# security.insecureAPI.bzero) and cppcheck, on the files the project ships.
# Any finding fails.  Not enabled: security.insecureAPI.DeprecatedOrUnsafe-
# BufferHandling, which flags every memcpy/snprintf for want of C11 Annex K
# (memcpy_s...), which glibc does not have.
ANALYZE_SRC    = $(LIB_SRC) pam_mailauth.c mailauth.c mailauthd.c
ANALYZE_CC    ?= clang
ANALYZE_FLAGS  = --analyze -Xanalyzer -analyzer-output=text \
                 -Xanalyzer -analyzer-checker=security.FloatLoopCounter,optin.portability.UnixAPI \
                 -Xanalyzer -analyzer-checker=security.insecureAPI.bzero \
                 -std=c11 -D_GNU_SOURCE -Ilib $(DEPCFLAGS)
CPPCHECK      ?= cppcheck
# --library=openssl is not shipped with cppcheck 2.10; system headers are not
# analysed (missingIncludeSystem).  Suppressions, each with its reason:
#   (none yet)
CPPCHECK_FLAGS = --enable=warning,portability,performance --std=c11 --error-exitcode=1 \
                 --inline-suppr --quiet -D_GNU_SOURCE -Ilib \
                 --suppress=missingIncludeSystem --library=posix

# Every message of the analyzer is a finding: there are no suppressions.
define analyze_one
out=$$($(ANALYZE_CC) $(ANALYZE_FLAGS) -o /dev/null $(1) 2>&1); \
if [ -n "$$out" ]; then printf '%s\n' "$$out"; fail=1; fi;
endef

analyze:
	@fail=0; $(foreach f,$(ANALYZE_SRC),$(call analyze_one,$(f))) \
	[ $$fail = 0 ] && echo "clang analyzer: no findings"; \
	if $(CPPCHECK) $(CPPCHECK_FLAGS) $(ANALYZE_SRC); then echo "cppcheck: no findings"; \
	else fail=1; fi; \
	exit $$fail

.PHONY: fuzz fuzz-run fuzz-corpus fuzz-clean analyze
