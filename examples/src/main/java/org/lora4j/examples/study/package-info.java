/**
 * What the studies ({@code lora4j organism}, {@code lora4j elasticity}) share: the report they
 * write and the samples files every reported rate can be recounted from.
 */
package org.lora4j.examples.study;
