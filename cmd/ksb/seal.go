package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ksb-project/ksb/envelope"
	"github.com/ksb-project/ksb/internal/safefile"
	"github.com/ksb-project/ksb/keyshare"
)

func init() { commands = append(commands, sealCmd, openCmd) }

// outputMode is the permission of the files seal and open write: a
// keyshare is a secret, and a sealed blob is kept as private as the share.
const outputMode = 0o600

// errExists is returned when the output file exists and --force is not given.
var errExists = errors.New("output file exists (use --force to replace it)")

func sealCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "seal FILE -o OUT",
		Short: "Seal a keyshare file with the node's mnemonic (xz + age scrypt)",
		Long: "Seal a keyshare file into an age file encrypted with the node's 24-word mnemonic as\n" +
			"passphrase, holding one xz stream of the file's exact bytes. The mnemonic must pass\n" +
			"ADR 004's checks (24 valid BIP39 words, enough byte entropy), and the result must pass\n" +
			"the five post-seal checks. Stock tools open it: age -d OUT | xz -d > FILE.\n\n" +
			"The scrypt work factor is 18 (about a second per guess). A lower one makes guessing the\n" +
			"mnemonic cheaper and needs --insecure-work-factor; it exists for tests.",
		Args: cobra.ExactArgs(1),
	}
	load := mnemonicFlag(cmd)
	out := cmd.Flags().StringP("output", "o", "", "file to write the sealed blob to (required)")
	wf := cmd.Flags().Int("work-factor", envelope.DefaultWorkFactor, fmt.Sprintf("scrypt work factor, log2 N (%d..%d)", envelope.MinWorkFactor, envelope.MaxWorkFactor))
	insecure := cmd.Flags().Bool("insecure-work-factor", false, fmt.Sprintf("allow --work-factor below %d (tests only: cheapens mnemonic guesses)", envelope.MinWorkFactor))
	force := cmd.Flags().Bool("force", false, "replace OUT if it exists")
	_ = cmd.MarkFlagRequired("output")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		in := args[0]
		if *wf < 1 {
			return fmt.Errorf("--work-factor %d: must be at least 1", *wf)
		}
		if *wf < envelope.MinWorkFactor && !*insecure {
			return fmt.Errorf("--work-factor %d is below %d: add --insecure-work-factor if this is a test", *wf, envelope.MinWorkFactor)
		}
		if err := checkOutput(*out, *force, in); err != nil {
			return err
		}
		data, info, err := keyshare.ReadFile(in)
		if err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		m, err := load()
		if err != nil {
			return err
		}
		blob, err := envelope.Seal(data, m, &envelope.SealOptions{WorkFactor: *wf, AllowLowWorkFactor: *insecure})
		if err != nil {
			return fmt.Errorf("sealing %s: %w", in, err)
		}
		if err := writeAtomic(*out, blob, *force); err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "sealed %s (%s %s, vault %s, %d parties) into %s: %d bytes, work factor %d\n",
			in, info.Kind, info.Algorithm, info.VaultPubKey, info.Parties, *out, len(blob), *wf)
		return err
	}
	return cmd
}

func openCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "open BLOB -o OUT",
		Short: "Open a sealed keyshare with the node's mnemonic",
		Long: "Open a blob made by 'ksb seal' (or by 'xz | age -p' with the mnemonic's 24 words, lower case,\n" +
			"single spaces) and write the keyshare file back byte for byte, mode 0600. OUT is never\n" +
			"overwritten unless --force is given, and is written atomically: a failure leaves nothing behind.\n\n" +
			fmt.Sprintf("Blobs asking for a scrypt work factor above %d are refused before scrypt runs: a hostile blob\n", envelope.MaxWorkFactor) +
			"could otherwise cost gigabytes of memory. rage, and age -p on a fast machine, may pick 21 or 22;\n" +
			fmt.Sprintf("for a file you made yourself, --max-work-factor N raises the cap up to %d (stock age's own).", envelope.MaxTrustedWorkFactor),
		Args: cobra.ExactArgs(1),
	}
	load := mnemonicFlag(cmd)
	out := cmd.Flags().StringP("output", "o", "", "file to write the keyshare to (required)")
	force := cmd.Flags().Bool("force", false, "replace OUT if it exists")
	maxWF := cmd.Flags().Int("max-work-factor", envelope.MaxWorkFactor,
		fmt.Sprintf("highest scrypt work factor to run, up to %d: raise it only for a file you trust (%d needs %d GiB of memory)",
			envelope.MaxTrustedWorkFactor, envelope.MaxTrustedWorkFactor, 1<<(envelope.MaxTrustedWorkFactor-20)))
	_ = cmd.MarkFlagRequired("output")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		in := args[0]
		if *maxWF < 1 || *maxWF > envelope.MaxTrustedWorkFactor {
			return fmt.Errorf("--max-work-factor %d: want 1 to %d (%d is stock age's own cap)", *maxWF, envelope.MaxTrustedWorkFactor, envelope.MaxTrustedWorkFactor)
		}
		if err := checkOutput(*out, *force, in); err != nil {
			return err
		}
		// One byte over the limit is enough for Open to refuse the size.
		blob, err := readCapped(in, envelope.DefaultMaxBlob+1)
		if err != nil {
			return err
		}
		m, err := load()
		if err != nil {
			return err
		}
		limits := &envelope.Limits{MaxWorkFactor: *maxWF, AllowHighWorkFactor: *maxWF > envelope.MaxWorkFactor}
		data, err := envelope.Open(blob, m, limits)
		var le *envelope.LimitError
		if errors.As(err, &le) && le.What == "scrypt work factor" && le.Got <= envelope.MaxTrustedWorkFactor {
			return fmt.Errorf("opening %s: %w\nIf you made this file yourself (rage, or age -p on a fast machine, picks 21 or 22), open it with --max-work-factor %d;\nthe cap protects against blobs from others, which could cost %d GiB of memory", in, err, le.Got, 1<<max(0, le.Got-20))
		}
		if err != nil {
			return fmt.Errorf("opening %s: %w", in, err)
		}
		if err := writeAtomic(*out, data, *force); err != nil {
			return err
		}
		what := "not a recognised keyshare"
		if info, err := keyshare.Parse(data); err == nil {
			what = fmt.Sprintf("%s %s, vault %s, %d parties", info.Kind, info.Algorithm, info.VaultPubKey, info.Parties)
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "opened %s into %s: %d bytes (%s)\n", in, *out, len(data), what)
		return err
	}
	return cmd
}

// checkOutput refuses, before any slow work, an output that exists (unless
// force) or that is the input itself (which force would destroy).
func checkOutput(out string, force bool, in string) error {
	fo, err := os.Stat(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", out, err)
	}
	if fi, err := os.Stat(in); err == nil && os.SameFile(fi, fo) {
		return fmt.Errorf("%s: output is the input file", out)
	}
	if !fo.Mode().IsRegular() {
		return fmt.Errorf("%s: output exists and is not a regular file", out)
	}
	if !force {
		return fmt.Errorf("%s: %w", out, errExists)
	}
	return nil
}

// readCapped reads a regular file of at most limit bytes; a larger one is
// read up to limit+1 bytes, so the caller's own size check sees it is too
// large without the whole file being loaded.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return data, nil
}

// writeAtomic writes data to path with outputMode, never half-written and,
// without force, never over an existing file (see safefile.Write).
func writeAtomic(path string, data []byte, force bool) error {
	err := safefile.Write(path, data, outputMode, force)
	if errors.Is(err, safefile.ErrExists) {
		return fmt.Errorf("%s: %w", path, errExists)
	}
	return err
}
