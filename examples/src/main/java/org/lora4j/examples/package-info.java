/**
 * Runnable programs: the {@code lora4j} command line ({@link org.lora4j.examples.Main}, each command
 * a picocli {@code @Command} with its options declared; {@code RunConfig} reads {@code --config}
 * files and writes each run's resolved options) and the quickstart that fits one adapter to a known
 * low-rank change.
 */
package org.lora4j.examples;
