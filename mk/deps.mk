# make deps: the Debian packages the build, the tests and `make run` need.
# As root, missing ones are installed with apt-get; otherwise the exact
# command is printed and make stops.

DEB_PACKAGES := build-essential pkg-config nbdkit nbdkit-plugin-dev \
	liblz4-dev check libinih-dev libxxhash-dev libzstd-dev \
	libnbd-bin python3-libnbd fio qemu-utils nbd-client fuse3 \
	e2fsprogs systemd clang valgrind \
	debhelper dpkg-dev fakeroot lintian libsubunit-dev libblkid-dev

.PHONY: deps
deps:
	@missing=$$(for p in $(DEB_PACKAGES) $(DEB_PACKAGES_EXTRA); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "make deps: missing Debian packages:" $$missing; \
	if [ "$$(id -u)" = 0 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	else \
		echo "make deps: run as root:"; \
		echo "  sudo apt-get install -y $$missing"; \
		exit 1; \
	fi
