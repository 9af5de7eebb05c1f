# libzpool: the zpool API, its backends and the page source.
#
# The objects are linked directly into each user (no archive), so every
# backend's ZPOOL_DRIVER constructor is kept. A new backend is one new
# allocator/*.c file; nothing here changes.

ALLOC_SRCS := $(wildcard allocator/*.c)
ALLOC_OBJS := $(ALLOC_SRCS:%.c=$(BUILD)/%.o)
EXTRA_CFLAGS_allocator := -Iallocator

ALL_TARGETS += $(ALLOC_OBJS)
