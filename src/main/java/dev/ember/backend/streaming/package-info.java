/**
 * Weight streaming, in plain Java with no device in it: models whose weights exceed a device's weight budget run with
 * only the embedding, the final norm and the output projection resident, and each decoder layer's two groups
 * (attention, MLP) copied into a window of device slots shortly before they are computed, then evicted when they are
 * done. {@link dev.ember.backend.streaming.StreamingSchedule} decides which copy is issued when, into which slot and
 * through which staging buffer; a backend carries the copies out through a {@link dev.ember.backend.streaming.Copier}
 * (host-to-device copies on their own stream and events on the GPU, plain memory copies on the CPU), so that CI tests
 * the schedule with a copier that only records. {@link dev.ember.backend.streaming.StreamingPlan} turns the user's
 * settings and the memory at hand into a mode and a window, {@link dev.ember.backend.streaming.GroupLayout} lays a
 * group out as the runners read it, and {@link dev.ember.backend.streaming.GroupReader}s fill it from the mapped
 * files or, with direct I/O, from the disk.
 */
package dev.ember.backend.streaming;
