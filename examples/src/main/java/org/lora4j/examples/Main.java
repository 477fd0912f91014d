package org.lora4j.examples;

import org.lora4j.train.trainer.Version;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;

/**
 * The {@code lora4j} command line: {@code java -jar examples/target/lora4j.jar [command] [options]},
 * parsed by picocli from each command's declared options (docs/cli.md). With no command it runs
 * {@code study --quick --overwrite --out lora4j-study} plus the options given.
 */
public final class Main {
    private Main() {
    }

    /** Set (to anything but 0 or false) to print the stack trace of an error, as --debug does. */
    static final String DEBUG_ENV = "LORA4J_DEBUG";

    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    /**
     * Runs a command and returns its exit code: 0 done, 1 an input or output failed (a file that
     * cannot be read or written, a run directory in use, an unexpected error), 2 a bad option or
     * input the command refuses, 3 training diverged or a loss was not finite. Every error is one
     * line, {@code lora4j <command>: <message>}, on stderr; the stack trace only with --debug or
     * {@value #DEBUG_ENV}=1.
     */
    static int run(String[] argv) {
        List<String> args = new ArrayList<>(Arrays.asList(argv));
        String env = System.getenv(DEBUG_ENV);
        boolean debug = args.remove("--debug") | (env != null && !env.isBlank() && !env.equals("0") && !env.equalsIgnoreCase("false"));
        argv = args.toArray(String[]::new);
        if (argv.length == 0 || (argv[0].startsWith("-") && !TOP_OPTIONS.contains(argv[0]))) {
            // No command: the study on its quick defaults, with the options given added.
            List<String> study = new ArrayList<>(List.of("study"));
            study.addAll(List.of(StudyCommand.withDefaults(argv)));
            argv = study.toArray(String[]::new);
        }
        String command = argv[0].startsWith("-") ? "help" : argv[0];
        CommandLine cl = commandLine();
        if (!argv[0].startsWith("-") && !cl.getSubcommands().containsKey(command)) {
            System.err.print("unknown command '" + command + "'\n" + cl.getUsageMessage());
            return 2;
        }
        StringWriter help = new StringWriter();
        cl.setOut(new PrintWriter(help, true));
        try {
            CommandLine sub = cl.getSubcommands().get(command);
            Path configFile = sub == null ? null : configFile(sub, argv);
            if (configFile != null) {
                sub.setDefaultValueProvider(RunConfig.provider(readConfig(command, configFile, sub)));
            }
            CommandLine.ParseResult parsed = cl.parseArgs(argv);
            if (CommandLine.printHelpIfRequested(parsed)) {
                System.out.print(help);
                return 0;
            }
            while (parsed.hasSubcommand()) {
                parsed = parsed.subcommand();
            }
            Object userObject = parsed.commandSpec().userObject();
            if (!(userObject instanceof Callable<?> c)) {
                System.out.print(cl.getUsageMessage());
                return 0;
            }
            return (Integer) c.call();
        } catch (CommandLine.ParameterException e) {
            return fail(command, Cli.message(e), e, debug, 2);
        } catch (IllegalArgumentException e) {
            return fail(command, message(e), e, debug, 2);
        } catch (org.lora4j.train.trainer.TrainingDivergedException e) {
            return fail(command, e.getMessage(), e, debug, 3);
        } catch (java.io.IOException e) {
            return fail(command, message(e), e, debug, 1);
        } catch (OutOfMemoryError e) {
            return fail(command, "out of memory (" + e.getMessage() + "); give the JVM more with -Xmx, or train"
                    + " with a smaller --batch-size or --max-length", e, debug, 1);
        } catch (Exception | Error e) {
            return fail(command, message(e) + (debug ? "" : " (run with --debug for the stack trace)"), e, debug, 1);
        }
    }

    /** The options that belong to {@code lora4j} itself rather than to the study run without a command. */
    private static final Set<String> TOP_OPTIONS = Set.of("--help", "-h", "--version", "-V");

    /**
     * The --config file of a command that runs from one, found before parsing so that its values
     * can be picocli's defaults; none for a command with its own subcommands (elasticity resistance
     * and rebound read their protocol from --config).
     */
    private static Path configFile(CommandLine sub, String[] argv) {
        if (sub.getCommandSpec().findOption("--config") == null
                || (argv.length > 1 && !sub.getSubcommands().isEmpty() && !argv[1].startsWith("-"))) {
            return null;
        }
        return RunConfig.find(argv);
    }

    /** The --config file's values; for elasticity, a protocol's file given without the protocol is said to be one. */
    private static java.util.Map<String, String> readConfig(String command, Path file, CommandLine sub)
            throws java.io.IOException {
        try {
            return RunConfig.read(file, sub.getCommandSpec());
        } catch (IllegalArgumentException e) {
            if (command.equals("elasticity") && e.getMessage().contains(": unknown key '")) {
                throw new IllegalArgumentException("name the protocol: lora4j elasticity resistance|rebound --config FILE"
                        + " --out DIR (" + e.getMessage() + ")", e);
            }
            throw e;
        }
    }

    @Command(name = "lora4j", mixinStandardHelpOptions = true, versionProvider = VersionProvider.class,
            synopsisSubcommandLabel = "[COMMAND]",
            description = {"LoRA fine-tuning on the JVM, and the studies of docs/research.md.",
                    "With no command: study --quick --overwrite --out " + StudyCommand.DEFAULT_OUT
                            + ", plus the options given. Each command takes --help; docs/cli.md describes them all."},
            footer = {"Errors are one line on stderr; --debug (or " + DEBUG_ENV + "=1) adds the stack trace.",
                    "Exit codes: 0 done, 1 a file could not be read or written (or an unexpected error),",
                    "2 a bad option or input, 3 training diverged or a loss was not finite."})
    static final class Top {
    }

    /** The version picocli prints for --version: the library's, from its jar. */
    static final class VersionProvider implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[]{"lora4j " + Version.get()};
        }
    }

    /** The whole command line, every command in the order the usage lists them. */
    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Top());
        cl.addSubcommand(new StudyCommand());
        cl.addSubcommand(new OrganismCommand());
        cl.addSubcommand(new Quickstart.Command());
        cl.addSubcommand(new Commands.Pretrain());
        cl.addSubcommand(new Commands.Sft());
        cl.addSubcommand(new Commands.Loss());
        cl.addSubcommand(new Commands.Generate());
        cl.addSubcommand(new Commands.Merge());
        cl.addSubcommand(new TrajectoryCommand());
        cl.addSubcommand(new DirectionCommands.Direction());
        cl.addSubcommand(new DirectionCommands.Compare());
        cl.addSubcommand(new EvalCommand());
        cl.addSubcommand(new ElasticityCommands.Kl());
        cl.addSubcommand(new ElasticityCommands.Elasticity());
        cl.addSubcommand(new CommandLine.HelpCommand());
        // Set after the subcommands are added: these settings reach only the commands already there.
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setUnmatchedOptionsAllowedAsOptionParameters(false);   // "--out --bogus": --bogus is unknown, not a value
        cl.setOverwrittenOptionsAllowed(false);                   // two --lr: refused, not the last silently kept
        cl.setSeparator(" ");                                     // --lr 1e-3, as help shows it and the docs write it
        cl.setUsageHelpWidth(100);
        Cli.registerConverters(cl);
        for (CommandLine sub : cl.getSubcommands().values()) {
            describeFirst(sub);
        }
        return cl;
    }

    /**
     * A command's help starts with what it does ("lora4j sft: fine-tune ..."), then the usage line and
     * the options; its one-line header is for the list of commands in {@code lora4j --help}.
     */
    private static void describeFirst(CommandLine cl) {
        List<String> keys = new ArrayList<>(cl.getHelpSectionKeys());
        keys.remove(CommandLine.Model.UsageMessageSpec.SECTION_KEY_HEADER_HEADING);
        keys.remove(CommandLine.Model.UsageMessageSpec.SECTION_KEY_HEADER);
        keys.remove(CommandLine.Model.UsageMessageSpec.SECTION_KEY_DESCRIPTION_HEADING);
        keys.remove(CommandLine.Model.UsageMessageSpec.SECTION_KEY_DESCRIPTION);
        keys.add(0, CommandLine.Model.UsageMessageSpec.SECTION_KEY_DESCRIPTION);
        cl.setHelpSectionKeys(keys);
        cl.getCommandSpec().usageMessage().synopsisHeading("%nUsage: ").abbreviateSynopsis(true);
        for (CommandLine sub : cl.getSubcommands().values()) {
            describeFirst(sub);
        }
    }

    private static int fail(String command, String message, Throwable e, boolean debug, int code) {
        System.err.println("lora4j " + command + ": " + message);
        if (debug) {
            e.printStackTrace();
        }
        return code;
    }

    /**
     * A one-line message: the exception's own where it explains itself; for the JDK's file errors,
     * whose message is the bare path, what went wrong with it; else the exception's type too.
     */
    static String message(Throwable e) {
        String m = e.getMessage();
        if (e instanceof java.nio.file.NoSuchFileException f) {
            return f.getFile() + ": " + (f.getReason() == null ? "no such file or directory" : f.getReason());
        }
        if (e instanceof java.nio.file.AccessDeniedException f) {
            return "permission denied: " + f.getFile();
        }
        if (e instanceof java.nio.file.FileAlreadyExistsException f) {
            return "already exists: " + f.getFile();
        }
        if (e instanceof java.nio.file.NotDirectoryException f) {
            return "not a directory: " + f.getFile();
        }
        if (e instanceof java.nio.file.DirectoryNotEmptyException f) {
            return "directory not empty: " + f.getFile();
        }
        if (e instanceof java.io.IOException || e instanceof IllegalArgumentException) {
            return m == null ? e.getClass().getSimpleName() : oneLine(m);
        }
        String type = e.getClass().getSimpleName();
        if (m == null && e.getCause() != null && e.getCause() != e) {
            return type + " caused by " + message(e.getCause());
        }
        return m == null ? "unexpected " + type : type + ": " + oneLine(m);
    }

    /** A message's lines joined: after a line ending in ':' with a space, else with "; ". */
    static String oneLine(String m) {
        StringBuilder b = new StringBuilder();
        for (String line : m.strip().split("\n")) {
            String l = line.strip();
            if (l.isEmpty()) {
                continue;
            }
            if (b.length() > 0) {
                b.append(b.charAt(b.length() - 1) == ':' ? " " : "; ");
            }
            b.append(l);
        }
        return b.toString();
    }

}
