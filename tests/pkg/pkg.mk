# make check-pkg: the Debian package (make deb), installed into a scratch
# root with dpkg --root, checked, removed and purged. Skips, saying why,
# where dpkg-buildpackage or debhelper is missing. Part of make check.

.PHONY: check-pkg
check-pkg:
	@BUILD=$(abspath $(BUILD)) MAKE="$(MAKE)" tests/pkg/test-deb.sh

CHECK_TARGETS += check-pkg
