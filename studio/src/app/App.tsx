import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { createBrowserRouter, RouterProvider } from 'react-router';
import { ApiError } from '../lib/envelope';
import { LoginPage, RequireSession } from '../features/auth';
import { DesignPage, DesignTypePage, DraftProvider, PublishPage, WorkflowPage } from '../features/design';
import { HomePage, TypePage } from '../features/home';
import { NotFound } from './NotFound';
import { Root } from './Root';
import { Shell } from './Shell';

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A 4xx will not change by asking again (a 401 was already refreshed and retried).
      retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
    },
  },
});

// Deep links: every path is under /studio/ (the server answers index.html for all of them).
const router = createBrowserRouter(
  [
    { path: '/', element: <Root /> },
    { path: '/login', element: <LoginPage /> },
    {
      path: '/t/:tenant',
      element: <RequireSession />,
      children: [
        {
          element: <Shell />,
          children: [
            { index: true, element: <HomePage /> },
            { path: 'types/:type', element: <TypePage /> },
            {
              path: 'design',
              element: <DraftProvider />,
              children: [
                { index: true, element: <DesignPage /> },
                { path: 'types/:type', element: <DesignTypePage /> },
                { path: 'types/:type/workflow', element: <WorkflowPage /> },
                { path: 'publish', element: <PublishPage /> },
              ],
            },
          ],
        },
      ],
    },
    { path: '*', element: <NotFound /> },
  ],
  { basename: '/studio' },
);

export function App() {
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  );
}
