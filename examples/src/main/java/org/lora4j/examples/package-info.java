/**
 * Runnable programs: the {@code lora4j} command line ({@link org.lora4j.examples.Main}) and the
 * quickstart that fits one adapter to a known low-rank change.
 */
package org.lora4j.examples;
