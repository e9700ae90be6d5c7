# tests/hygiene/hygiene.mk - process hygiene in one long-lived host process
# (SPEC 7), included by the main Makefile.  tests/hygiene/test_hygiene.sh runs it.
#
#   tests/hygiene/harness            loads the built pam_mailauth.so through libpam
#                                    (pam_start_confdir), links -lpam only; built
#                                    with $(SAN), so `make asan` checks it too
#   tests/hygiene/scanfree.so        LD_PRELOAD shim: scans freed blocks for the
#                                    password, audits socket writes and close-on-exec
#                                    (never built with a sanitizer: it replaces free)
#   tests/hygiene/nocleanse.so       negative control: an OPENSSL_cleanse() that wipes nothing
#   tests/hygiene/build/             a ThreadSanitizer build of the library and the
#                                    module (pam_mailauth.so) and of the harness
#                                    (harness-tsan), separate from the real objects
#
# `make test-programs` (and so `make check`) builds all of it: hygiene-programs is
# added to its prerequisites below.

HYG_DIR   = tests/hygiene
HYG_BUILD = $(HYG_DIR)/build
HYG_HDR   = $(HYG_DIR)/shim.h tests/unit/fake.h

# The TSan build: the project's warnings, no _FORTIFY_SOURCE/stack protector
# (the sanitizer runtime does its own interception), frame pointers for stacks.
HYG_TSAN       = -fsanitize=thread -fno-omit-frame-pointer
HYG_TSAN_FLAGS = -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) $(WERROR) -fPIC \
                 -fvisibility=hidden -Ilib $(DEPCFLAGS) $(HYG_TSAN)
HYG_TSAN_OBJ   = $(patsubst lib/%.c,$(HYG_BUILD)/%.o,$(LIB_SRC)) $(HYG_BUILD)/pam_mailauth.o

hygiene-programs: $(HYG_DIR)/harness $(HYG_DIR)/scanfree.so $(HYG_DIR)/nocleanse.so \
                  $(HYG_BUILD)/pam_mailauth.so $(HYG_BUILD)/harness-tsan

test-programs: hygiene-programs

$(HYG_DIR)/harness: $(HYG_DIR)/harness.c $(HYG_HDR)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(ALL_LDFLAGS) -lpam -lpthread

# No $(HARDEN): _FORTIFY_SOURCE turns open() into an inline wrapper that
# cannot be redefined; no $(SAN): the shim is the allocator's front door.
$(HYG_DIR)/scanfree.so: $(HYG_DIR)/scanfree.c $(HYG_DIR)/shim.h
	$(CC) -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(WERROR) -U_FORTIFY_SOURCE -fPIC \
	  -fvisibility=hidden -shared -o $@ $< -Wl,-z,relro,-z,now -ldl

# Negative control only: an OPENSSL_cleanse() that does nothing.
$(HYG_DIR)/nocleanse.so: $(HYG_DIR)/nocleanse.c
	$(CC) -std=c11 $(OPT) $(WARN) $(WERROR) -fPIC -shared -o $@ $<

$(HYG_BUILD)/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(HYG_BUILD)
	$(CC) $(HYG_TSAN_FLAGS) -c -o $@ $<

$(HYG_BUILD)/pam_mailauth.o: pam_mailauth.c $(LIB_HDR)
	@mkdir -p $(HYG_BUILD)
	$(CC) $(HYG_TSAN_FLAGS) -c -o $@ $<

$(HYG_BUILD)/pam_mailauth.so: $(HYG_TSAN_OBJ) pam_mailauth.map
	$(CC) -shared -o $@ $(HYG_TSAN_OBJ) -Wl,--version-script=pam_mailauth.map \
	  -Wl,-z,nodelete $(HYG_TSAN) $(DEPLIBS)

$(HYG_BUILD)/harness-tsan: $(HYG_DIR)/harness.c $(HYG_HDR)
	@mkdir -p $(HYG_BUILD)
	$(CC) $(HYG_TSAN_FLAGS) -Itests/unit -fPIE -pie -o $@ $< $(HYG_TSAN) -lpam -lpthread

hygiene-clean:
	rm -rf $(HYG_BUILD) $(HYG_DIR)/harness $(HYG_DIR)/scanfree.so $(HYG_DIR)/nocleanse.so

clean: hygiene-clean

.PHONY: hygiene-programs hygiene-clean
