# check-unit-zsmalloc: zsmalloc's own suite (tests/unit/test_alloc_zsmalloc.c)
# alone. It has threads (compaction racing with malloc, free and map; the
# eviction race), so make check-tsan runs it under ThreadSanitizer; make
# check-unit runs it with every other unit test.

.PHONY: check-unit-zsmalloc
check-unit-zsmalloc: $(BUILD)/tests/unit/test_alloc_zsmalloc
	$(BUILD)/tests/unit/test_alloc_zsmalloc

TSAN_TARGETS += check-unit-zsmalloc
