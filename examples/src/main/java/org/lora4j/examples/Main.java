package org.lora4j.examples;

import java.util.Arrays;
import java.util.Set;

/**
 * The {@code lora4j} command line: {@code java -jar examples/target/lora4j.jar [command] [options]}.
 * With no command it runs the quickstart on built-in defaults.
 */
public final class Main {
    private Main() {
    }

    static final String USAGE = """
            usage: lora4j [command] [options]     (each command takes --help)
              quickstart   fit a LoRA adapter to a known low-rank change and save it in PEFT format (default)
            """;

    public static void main(String[] argv) throws Exception {
        System.exit(run(argv));
    }

    static int run(String[] argv) throws Exception {
        String command = argv.length == 0 || argv[0].startsWith("--") ? "quickstart" : argv[0];
        String[] rest = argv.length > 0 && !argv[0].startsWith("--") ? Arrays.copyOfRange(argv, 1, argv.length) : argv;
        boolean help = Arrays.asList(rest).contains("--help") || command.equals("help");
        try {
            switch (command) {
                case "quickstart" -> {
                    if (help) {
                        System.out.print(Quickstart.HELP);
                        return 0;
                    }
                    Args args = new Args(rest, Set.of());
                    Quickstart.Settings s = Quickstart.Settings.parse(args);
                    args.rejectUnknown();
                    Quickstart.run(s);
                }
                case "help" -> System.out.print(USAGE);
                default -> {
                    System.err.print("unknown command '" + command + "'\n" + USAGE);
                    return 2;
                }
            }
        } catch (IllegalArgumentException e) {
            System.err.println("lora4j " + command + ": " + e.getMessage());
            return 2;
        }
        return 0;
    }
}
