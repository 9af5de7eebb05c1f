# Man pages: docs/*.1 and docs/*.5, written in roff by hand. `make install`
# copies them, gzip-free, to $(DESTDIR)$(MANDIR)/man1 and man5.

MAN1 := $(wildcard docs/*.1)
MAN5 := $(wildcard docs/*.5)

.PHONY: install-docs
install-docs:
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/

INSTALL_TARGETS += install-docs
