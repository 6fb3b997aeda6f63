package pgtest

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestDatabasesAreSeparate(t *testing.T) {
	dsn1, dsn2 := DSN(t), DSN(t)
	if dsn1 == dsn2 {
		t.Fatalf("two DSN calls: both %q, want two databases", dsn1)
	}
	a, b := connect(t, dsn1), connect(t, dsn2)
	if _, err := a.Exec(t.Context(), `CREATE TABLE only_in_a (x int)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("table of database 1 seen in database 2: found %d, want 0", n)
	}
	var user string
	if err := a.QueryRow(t.Context(), `SELECT current_user`).Scan(&user); err != nil || user != "postgres" {
		t.Fatalf("current_user: found %q, %v, want postgres", user, err)
	}
}

func TestPasswordRequired(t *testing.T) {
	u, err := url.Parse(DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("postgres", "wrong")
	if conn, err := pgx.Connect(t.Context(), u.String()); err == nil {
		conn.Close(context.Background())
		t.Fatal("connect with a wrong password succeeded, want an authentication error")
	}
	u.User = url.User("postgres")
	if conn, err := pgx.Connect(t.Context(), u.String()); err == nil {
		conn.Close(context.Background())
		t.Fatal("connect without a password succeeded, want an authentication error")
	}
}

// The databases sort text by locale, not by bytes, so that code which
// forgets COLLATE "C" shows it.
func TestLocaleCollation(t *testing.T) {
	dsn := DSN(t)
	if running.major < 15 {
		t.Skipf("PostgreSQL %d has no ICU locale provider", running.major)
	}
	conn := connect(t, dsn)
	var got string
	err := conn.QueryRow(t.Context(),
		`SELECT string_agg(x, ' ' ORDER BY x) FROM (VALUES ('a'), ('B'), ('c')) v(x)`).Scan(&got)
	if err != nil {
		t.Fatal(err)
	}
	if got != "a B c" {
		t.Fatalf("ORDER BY in a test database: found %q, want %q (ICU en-US, not byte order)", got, "a B c")
	}
}

func TestDatabaseDroppedAfterTest(t *testing.T) {
	var name string
	t.Run("user", func(st *testing.T) {
		u, err := url.Parse(DSN(st))
		if err != nil {
			st.Fatal(err)
		}
		name = strings.TrimPrefix(u.Path, "/")
		connect(t, u.String()) // still open when the subtest ends: the drop must end it
	})
	conn := connect(t, running.dsn("postgres"))
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if name == "" || n != 0 {
		t.Fatalf("database %q after its test: found %d, want 0", name, n)
	}
}

func TestParseMajor(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int
		wantErr string
	}{
		{"postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 15, ""},
		{"postgres (PostgreSQL) 17beta1\n", 17, ""},
		{"postgres 15.1\n", 0, "want \"postgres (PostgreSQL) N...\""},
	} {
		got, err := parseMajor(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseMajor(%q): found %d, %v, want an error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseMajor(%q): found %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
}
