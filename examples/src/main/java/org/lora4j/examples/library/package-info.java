/**
 * lora4j used as a library from a Java program: {@link org.lora4j.examples.library.FineTuneExample}
 * is a first LoRA fine-tune end to end, walked through in docs/library.md.
 */
package org.lora4j.examples.library;
