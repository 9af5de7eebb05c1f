# Soak, fault and churn runs (tests/soak/), none of them in make check
# except check-soak-quick:
#
#   make soak               fio verified for SOAK_SECONDS (default 600) on
#                           5x mem_limit with a backing file (soak.sh)
#   make soak-faults        a backing file on a full filesystem; a backing
#                           file destroyed under a running device
#   make soak-churn         200 client connect/disconnect cycles with
#                           requests in flight; nbdkit's RSS after them.
#                           nbdkit runs as the units run it, with
#                           CHURN_NBDKIT_OPTS (default --threads=1);
#                           =--threads=16 shows nbdkit 1.32's abort
#   make check-soak-quick   bad requests: past the end, zero-length, huge,
#                           unaligned (test-requests.sh, a few seconds)
#
# They reuse the e2e prelude (tests/e2e/functions.sh) and its environment.

SOAK_SECONDS ?= 600

.PHONY: soak soak-faults soak-churn check-soak-quick
soak: $(PLUGIN_SO)
	@$(E2E_ENV) SOAK_SECONDS=$(SOAK_SECONDS) tests/soak/soak.sh

soak-faults: $(PLUGIN_SO)
	@$(E2E_ENV) tests/soak/test-faults.sh

CHURN_NBDKIT_OPTS ?= --threads=1

soak-churn: $(PLUGIN_SO)
	@$(E2E_ENV) ZRAMD_NBDKIT_OPTS="$(CHURN_NBDKIT_OPTS)" \
		tests/soak/test-churn.sh

check-soak-quick: $(PLUGIN_SO)
	@$(E2E_ENV) tests/soak/test-requests.sh

# A few seconds: part of make check.
CHECK_TARGETS += check-soak-quick
