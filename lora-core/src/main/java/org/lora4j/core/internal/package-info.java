/**
 * Internal: native memory and BLAS for lora4j's own modules (lora-core's {@code LoraLinear} and
 * lora-train's model). Not API: these classes are public only so that other lora4j modules can
 * reach them, and they may change or go away in any release.
 *
 * <p>{@link org.lora4j.core.internal.NativeBuffer} is an ND4J array's memory seen from Java (typed
 * element reads and writes, copies, a BLAS pointer at any element); {@link org.lora4j.core.internal.Blas}
 * calls OpenBLAS's gemm on whole matrices or on column-major blocks inside those buffers. Where a
 * view's first element lies is decided in one place, {@link org.lora4j.core.internal.NativeBuffer#elementsToFirst}.
 */
package org.lora4j.core.internal;
