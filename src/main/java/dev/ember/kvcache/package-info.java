/**
 * The paged key/value cache's bookkeeping: a fixed pool of blocks ({@link dev.ember.kvcache.BlockAllocator}),
 * each sequence's {@link dev.ember.kvcache.BlockTable}, and the cache geometry. The storage itself belongs
 * to the backend (host arrays on the CPU, device memory on a GPU); this package only says where tokens live.
 */
package dev.ember.kvcache;
