# make deb: the Debian package, built from a copy of the tracked source
# (dpkg-buildpackage writes its results into the parent of the tree it
# builds, so the copy lives in $(BUILD)/deb/ and so do the .deb and the
# .changes). See debian/ and tests/pkg/.
#
#   make deb            $(BUILD)/deb/zramd_$(VERSION)_ARCH.deb
#   apt install ./build/deb/zramd_*.deb

DEB_DIR = $(BUILD)/deb
DEB_SRC = $(DEB_DIR)/zramd-$(VERSION)

.PHONY: deb
deb:
	@command -v dpkg-buildpackage >/dev/null && [ -f /usr/share/perl5/Debian/Debhelper/Dh_Lib.pm ] || \
		{ echo "make deb: needs dpkg-dev and debhelper (make deps as root installs them)" >&2; exit 1; }
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t $(DEB_SRC)
	cd $(DEB_SRC) && DEB_BUILD_OPTIONS="nocheck parallel=2" \
		dpkg-buildpackage -b -us -uc >../build.log 2>&1 || \
		{ tail -30 ../build.log; exit 1; }
	@ls $(DEB_DIR)/*.deb
